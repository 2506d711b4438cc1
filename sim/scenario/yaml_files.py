"""Scenario files as plain mappings: safe YAML loading, `extends:` inheritance, and `--set` overrides.

Every problem is a ScenarioError line naming the file (or the --set text) and where in it, so a planner can fix
a scenario without a traceback: malformed YAML with line and column, duplicate keys, impossible dates, object
tags (refused: scenario files are plain data), a missing or circular `extends:`, an override of a key that does
not exist (with a did-you-mean). Nothing here knows the schema; sim.scenario.validate checks the mapping.

Limits, so that a hostile file is refused quickly instead of crashing or hanging the loader: a scenario file is a
regular file of at most 256 kB (sim.scenario.input_files), nested at most MAX_NESTING levels, holding at most
MAX_VALUES values once aliases are expanded (a "billion laughs" file is a few lines that expand to 10^9), and
extending at most MAX_EXTENDS_DEPTH files. A key must be a plain value (a name, number or date), and a date is a
date: a time of day is refused. `--set` values are read by the same loader, so they obey the same rules and get
the same messages. `parse_yaml` is the project's one safe YAML loader, these limits its defaults: a run folder's
saved scenarios are read with it too (sim.outputs.run_reader), under limits derived from what a run can write.
"""
from __future__ import annotations

import copy
import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Any

import yaml

from sim.scenario.input_files import MAX_SCENARIO_BYTES, InputFileError, check_regular_file, read_text, resolve_path
from sim.scenario.schema import ScenarioError

MAX_NESTING = 50            # levels of mappings and lists; the shipped scenarios use 6
MAX_VALUES = 50_000         # keys and values once aliases are expanded; the largest shipped file has 2,215
MAX_EXTENDS_DEPTH = 20      # files in an `extends:` chain; the shipped scenarios use 3

_SCENARIO_FILE = "a scenario YAML file"
_DATE_AND_TIME_TAG = "tag:nhs-nwl-sim,2024:date-and-time"
# A date with a time of day that YAML's own timestamp pattern leaves as text (no seconds), e.g. 2021-06-07 10:00.
_DATE_AND_TIME = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}(?:[Tt]|[ \t]+)\d{1,2}:\d{2}(?::\d{2}(?:\.\d*)?)?"
                            r"(?:[ \t]*(?:Z|[-+]\d{1,2}(?::?\d{2})?))?$")


class _Refused(yaml.MarkedYAMLError):
    """A file the loader refuses (not a syntax error): `key` is where in the mapping, as a dotted path."""

    def __init__(self, problem: str, mark: yaml.Mark | None, key: str = "") -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.key = key


class _Loader(yaml.SafeLoader):
    """The project's YAML loader (see parse_yaml): SafeLoader (no object tags) that also refuses what a scenario
    never holds: duplicate keys, a mapping or list used as a key, impossible dates, a date with a time of day,
    nesting deeper than `max_nesting`, more than `max_values` values once aliases are expanded, an alias inside
    the collection it names. Each refusal is a _Refused naming the dotted key path and the line. (PyYAML's own
    pure-Python parser: libyaml's scanner has limits of its own that would refuse deep nesting with another
    message, or let a --set value through as text.)"""

    def __init__(self, stream: str, max_nesting: int = MAX_NESTING, max_values: int = MAX_VALUES) -> None:
        super().__init__(stream)
        self.max_nesting = max_nesting
        self.max_values = max_values
        self._key_path: list[str] = []
        self._paths: dict[int, str] = {}    # id(node) -> dotted key path, for messages
        self._sizes: dict[int, int] = {}    # id(node) -> values in it with aliases expanded; set once composed

    def key_of(self, node: yaml.Node) -> str:
        return self._paths.get(id(node), "")

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if len(self._key_path) >= self.max_nesting:
            raise _Refused(f"nesting deeper than {self.max_nesting} levels; a scenario needs far fewer",
                           event.start_mark, ".".join(self._key_path[:3]) + " …")
        if isinstance(parent, yaml.MappingNode):
            part = index.value if isinstance(index, yaml.ScalarNode) else "?" if index is not None else "(a key)"
        else:
            part = str(index) if parent is not None else None
        if part is not None:
            self._key_path.append(str(part))
        try:
            is_alias = isinstance(event, yaml.AliasEvent)
            node = super().compose_node(parent, index)
            if node is None:
                return None
            if is_alias:
                size = self._sizes.get(id(node))
                if size is None:
                    raise _Refused(f"alias *{event.anchor} is inside the collection it names (a structure "
                                   "that contains itself)", event.start_mark, ".".join(self._key_path))
            else:
                self._paths[id(node)] = ".".join(self._key_path)
                size = 1 + self._children_size(node)
                self._sizes[id(node)] = size
            if size > self.max_values:
                raise _Refused(f"more than {self.max_values:,} values (an alias *name counts as a copy of what it "
                               "names); a scenario needs far fewer", event.start_mark, ".".join(self._key_path))
            return node
        finally:
            if part is not None:
                self._key_path.pop()

    def _children_size(self, node: yaml.Node) -> int:
        if isinstance(node, yaml.SequenceNode):
            return sum(self._sizes[id(child)] for child in node.value)
        if isinstance(node, yaml.MappingNode):
            return sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        return 0


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        where = loader.key_of(node)
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise _Refused("merge keys (<<) are not supported; write the keys out, or use extends:",
                           key_node.start_mark, where)
        if isinstance(key_node, (yaml.MappingNode, yaml.SequenceNode)):
            kind = "a mapping" if isinstance(key_node, yaml.MappingNode) else "a list"
            raise _Refused(f"{kind} cannot be a key; expected a name, number or date",
                           key_node.start_mark, where)
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise _Refused(f"a {type(key).__name__} cannot be a key; expected a name, number or date",
                           key_node.start_mark, where) from None
        if key in seen:
            raise _Refused(f"duplicate key {key!r}", key_node.start_mark, where)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        value = yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise _Refused(f"impossible date {node.value!r} ({exc})", node.start_mark, loader.key_of(node)) from None
    if isinstance(value, dt.datetime):
        _refuse_date_and_time(loader, node)
    return value


def _refuse_date_and_time(loader: _Loader, node: yaml.ScalarNode) -> Any:
    raise _Refused(f"expected a date as YYYY-MM-DD, found {node.value!r} (a date with a time of day; "
                   "write the date alone, or quote text)", node.start_mark, loader.key_of(node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_Loader.add_implicit_resolver(_DATE_AND_TIME_TAG, _DATE_AND_TIME, list("0123456789"))
_Loader.add_constructor(_DATE_AND_TIME_TAG, _refuse_date_and_time)


def parse_yaml(text: str, *, max_bytes: int = MAX_SCENARIO_BYTES, max_nesting: int = MAX_NESTING,
               max_values: int = MAX_VALUES, documents: bool = False) -> Any:
    """`text` read by the project's one safe YAML loader: plain data only (SafeConstructor: no tag builds an
    object) and the rules of _Loader, within caps: at most `max_bytes` bytes of UTF-8, nested at most
    `max_nesting` levels, at most `max_values` values in a document once aliases are expanded (the caps are
    checked while the text is read, before anything is built, so a hostile file costs no more than its caps).
    Scenario files use the defaults; a run folder's saved scenarios use caps derived from what a run can write
    (sim.outputs.run_reader).

    One document (None when the text holds none), or with `documents` a list of every document. Raises
    yaml.YAMLError (`yaml_problem(exc, text)` says what and where, in one line) or RecursionError."""
    if 4 * len(text) > max_bytes:                  # else it cannot be over: a character is at most 4 bytes
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise _Refused(f"{size:,} bytes of text, more than the {max_bytes:,} such a file may hold", None)
    loader = _Loader(text, max_nesting, max_values)
    try:
        if not documents:
            return loader.get_single_data()
        found = []
        while loader.check_node():
            found.append(loader.construct_document(loader.get_node()))
        return found
    finally:
        loader.dispose()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def shown(value: Any, limit: int = 80) -> str:
    """A value for a message: quoted (repr), cut to `limit` characters (a hostile value may be megabytes)."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f" … ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " …"


def yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """What parse_yaml found wrong in `text`, with where: `key (line L, column C): problem`, in one line."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return f"line {line}: character #x{exc.character:04x} cannot be in a YAML file"
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f"malformed YAML: {_one_line(str(exc))}"
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    what = _one_line(exc.problem or exc.context or "malformed YAML")
    if isinstance(exc, _Refused):
        place = f"{exc.key} ({where})" if exc.key and where else exc.key or where
        return f"{place}: {what}" if place else what
    if "could not determine a constructor" in what:
        tag = what.split("for the tag ")[-1]
        return f"{where or 'unknown position'}: tag not allowed ({tag}); scenario files are plain data, loaded safely"
    return f"malformed YAML at {where or 'unknown position'}: {what}"


# Scenario files' texts and what parse_yaml read from them, the most recent few: a command reads the same files more
# than once (`run` loads its scenario, then again with the replications and seed it settled on), and reading a
# scenario and what it extends with the pure-Python loader is about a quarter of a second each time.
_PARSED: dict[str, Any] = {}
_PARSED_KEPT = 16


def _parse_scenario_text(text: str) -> Any:
    """parse_yaml(text), from _PARSED when this text was read before: a deep copy, so a caller may change it."""
    if text not in _PARSED:
        data = parse_yaml(text)
        if len(_PARSED) >= _PARSED_KEPT:
            del _PARSED[next(iter(_PARSED))]
        _PARSED[text] = data
    return copy.deepcopy(_PARSED[text])


def _read_yaml(path: Path) -> dict:
    try:
        text = read_text(path, MAX_SCENARIO_BYTES, _SCENARIO_FILE)
    except InputFileError as exc:
        raise ScenarioError([f"{path}: {exc.reason}"]) from None
    try:
        data = _parse_scenario_text(text)
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{path}: {yaml_problem(exc, text)}"]) from None
    except RecursionError:
        raise ScenarioError([f"{path}: nested too deeply to read; a scenario needs far fewer levels"]) from None
    if data is None:
        raise ScenarioError([f"{path}: the file is empty; expected a scenario (a mapping of keys such as name, "
                             "title, start_date)"])
    if not isinstance(data, dict):
        raise ScenarioError([f"{path}: expected a mapping of keys at the top level, found {type(data).__name__}"])
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """Merge override into a copy of base: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_raw(path: Path, _chain: tuple[Path, ...] = ()) -> dict:
    """Read a scenario file and everything it `extends:`, merged into one plain mapping."""
    path = Path(path)
    resolved = resolve_path(path)
    if resolved in _chain:
        raise ScenarioError([f"{path}: extends: circular inheritance ({' -> '.join(p.name for p in _chain)})"])
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError([f"{path}: extends: expected a file name (string), found {type(parent).__name__}"])
    if len(_chain) + 1 >= MAX_EXTENDS_DEPTH:
        names = [p.name for p in _chain + (resolved,)]
        shown = " -> ".join(names[:3] + ["…"] + names[-2:])
        raise ScenarioError([f"{path}: extends: more than {MAX_EXTENDS_DEPTH} files deep ({shown} -> {parent}); "
                             f"a scenario extends at most {MAX_EXTENDS_DEPTH} files in a chain"])
    parent_path = (path.parent / parent)
    if parent_path.suffix == "":
        parent_path = parent_path.with_suffix(".yaml")
    try:
        check_regular_file(parent_path, MAX_SCENARIO_BYTES, _SCENARIO_FILE)
    except InputFileError as exc:
        if exc.reason.startswith("no such file"):
            raise ScenarioError([f"{path}: extends: file {parent!r} not found beside the scenario"]) from None
        raise ScenarioError([f"{path}: extends: {parent!r} ({parent_path}): {exc.reason}"]) from None
    base = load_raw(parent_path, _chain + (resolved,))
    return deep_merge(base, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`dotted.key=value` -> (path, value); the value is read as YAML by the scenario files' loader (so 12, 0.5,
    true, [1,2] and 2021-06-07 work, and an impossible date or a time of day is refused as in a file)."""
    if "=" not in text:
        raise ScenarioError([f"--set {shown(text)}: expected dotted.key=value"])
    key, raw_value = text.split("=", 1)
    path = [p for p in key.strip().split(".")]
    if not all(path):
        raise ScenarioError([f"--set {text!r}: empty key in {key!r}"])
    try:
        value = parse_yaml(raw_value) if raw_value.strip() else ""
    except _Refused as exc:   # what a file may not hold, a value may not either, with the same message
        raise ScenarioError([f"--set {shown(text)}: {_one_line(exc.problem or '')}"]) from None
    except RecursionError:
        raise ScenarioError([f"--set {shown(text)}: nested too deeply to read"]) from None
    except yaml.YAMLError:    # not YAML (or a tag): the text itself, which validation then checks
        value = raw_value
    return path, value


def apply_overrides(raw: dict, overrides: list[str], source: str = "--set") -> dict:
    """Apply dotted overrides. The path to the last key must exist (else an error with did-you-mean); the
    last key may be new (a default the file does not state), and validation then checks it."""
    out = copy.deepcopy(raw)
    problems: list[str] = []
    for text in overrides:
        path, value = parse_override(text)
        node: Any = out
        for depth, part in enumerate(path[:-1]):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            if not isinstance(node, dict) or part not in node:
                known = list(node) if isinstance(node, dict) else []
                problems.append(_missing_key_message(source, path[: depth + 1], part, known))
                node = None
                break
            node = node[part]
        if node is None:
            continue
        last = path[-1]
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        elif isinstance(node, dict):
            # a key the file leaves at its default may be set too; validation rejects unknown keys
            node[last] = value
        else:
            known = list(node) if isinstance(node, dict) else []
            problems.append(_missing_key_message(source, path, last, known))
    if problems:
        raise ScenarioError(problems)
    return out


def _missing_key_message(source: str, path: list[str], part: str, known: list[str]) -> str:
    hint = difflib.get_close_matches(part, [str(k) for k in known], n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"{source} {'.'.join(path)}: no such key{extra}"
