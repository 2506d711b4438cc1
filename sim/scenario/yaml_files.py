"""Scenario files as plain mappings: safe YAML loading, `extends:` inheritance, and `--set` overrides.

Every problem is a ScenarioError line naming the file (or the --set text) and where in it, so a planner can fix
a scenario without a traceback: malformed YAML with line and column, duplicate keys, impossible dates, object
tags (refused: scenario files are plain data), a missing or circular `extends:`, an override of a key that does
not exist (with a did-you-mean). Nothing here knows the schema; sim.scenario.validate checks the mapping.
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

import yaml

from sim.scenario.schema import ScenarioError


class _SafeLoaderNoDup(yaml.SafeLoader):
    """SafeLoader (no object tags) that rejects duplicate keys instead of silently keeping the last."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", mark)
        seen[key] = True
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"impossible date {node.value!r} ({exc})", node.start_mark) from None


_SafeLoaderNoDup.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_SafeLoaderNoDup.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{path}: cannot read ({exc})"]) from None
    try:
        data = yaml.load(text, Loader=_SafeLoaderNoDup)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = exc.problem or exc.context or "malformed YAML"
        if "could not determine a constructor" in what:
            tag = what.split("for the tag ")[-1]
            raise ScenarioError([f"{path}: line {mark.line + 1 if mark else '?'}: tag not allowed ({tag}); "
                                 "scenario files are plain data, loaded safely"]) from None
        if what.startswith(("impossible date", "duplicate key")):
            raise ScenarioError([f"{path}: {where}: {what}"]) from None
        raise ScenarioError([f"{path}: malformed YAML at {where}: {what}"]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{path}: malformed YAML: {exc}"]) from None
    if data is None:
        raise ScenarioError([f"{path}: the file is empty"])
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
    resolved = path.resolve()
    if resolved in _chain:
        raise ScenarioError([f"{path}: extends: circular inheritance ({' -> '.join(p.name for p in _chain)})"])
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ScenarioError([f"{path}: extends: expected a file name (string), found {type(parent).__name__}"])
    parent_path = (path.parent / parent)
    if parent_path.suffix == "":
        parent_path = parent_path.with_suffix(".yaml")
    if not parent_path.exists():
        raise ScenarioError([f"{path}: extends: file {parent!r} not found beside the scenario"])
    base = load_raw(parent_path, _chain + (resolved,))
    return deep_merge(base, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`dotted.key=value` -> (path, value); the value is read as YAML (so 12, 0.5, true, [1,2] work)."""
    if "=" not in text:
        raise ScenarioError([f"--set {text!r}: expected dotted.key=value"])
    key, raw_value = text.split("=", 1)
    path = [p for p in key.strip().split(".")]
    if not all(path):
        raise ScenarioError([f"--set {text!r}: empty key in {key!r}"])
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
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
