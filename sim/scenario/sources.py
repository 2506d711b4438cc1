"""Where a scenario's numbers come from, as its files' comments say: [S] sourced, [D] derived, [E] estimate.

The shipped scenario files tag values in comments (`referrals_per_week: 16406.0   # [D] fitted: ...`). YAML
loading drops comments, so a run reads them here, from the same files, and writes them into its manifest
(`assumption_sources`): the report then shows each key assumption's source from the run folder alone.

`stated_sources(path)` -> {dotted key: comment} for every key whose line carries a tag in a trailing comment,
or (for a section such as `start_list:`) in a comment line just under it, following `extends:` (a file's own
entry wins over the file it extends). A key a later file sets again without a tag loses the inherited tag (the
value is no longer the one the tag was about), and so does a key changed by `--set` (`without_overridden`).

A line-based reading of block-style YAML, which is how scenario files are written; anything it cannot read
(flow mappings across lines, keys in quotes) simply has no source, which the report says.
"""
from __future__ import annotations

import re
from pathlib import Path

from sim.scenario.input_files import MAX_SCENARIO_BYTES, read_text

TAG = re.compile(r"\[(S|D|E)\b[^\]]*\]")
_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z0-9_][\w\-]*)\s*:(?P<rest>.*)$")
_EXTENDS = re.compile(r"^extends:\s*['\"]?(?P<file>[^'\"#\s]+)")
MAX_FILES = 20          # as sim.scenario.yaml_files.MAX_EXTENDS_DEPTH
MAX_COMMENT_CHARS = 300


def _comment(rest: str) -> str | None:
    """The trailing comment of a line's value part (a `#` after whitespace, outside quotes)."""
    quote = None
    for i, ch in enumerate(rest):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1].isspace()):
            return rest[i + 1:].strip()
    return None


def file_sources(text: str) -> tuple[dict[str, str], set[str]]:
    """({dotted key: tagged comment}, every dotted key the file sets) for one file's text."""
    tagged: dict[str, str] = {}
    keys: set[str] = set()
    stack: list[tuple[int, str]] = []
    section: tuple[int, str] | None = None       # the last key line with no value: its comment lines follow
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            indent = len(line) - len(line.lstrip())
            if section and indent > section[0] and TAG.search(stripped) and section[1] not in tagged:
                tagged[section[1]] = stripped.lstrip("#").strip()[:MAX_COMMENT_CHARS]
            continue
        m = _KEY_LINE.match(line)
        if not m or stripped.startswith("-"):
            section = None
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [m["key"]])
        stack.append((indent, m["key"]))
        keys.add(path)
        comment = _comment(m["rest"])
        value = m["rest"].split("#", 1)[0].strip() if comment is not None else m["rest"].strip()
        if comment and TAG.search(comment):
            tagged[path] = comment[:MAX_COMMENT_CHARS]
        section = (indent, path) if not value else None
    return tagged, keys


def stated_sources(path: Path) -> dict[str, str]:
    """The tagged comments of a scenario file and the files it extends (see the module's docstring)."""
    chain: list[Path] = []
    current: Path | None = Path(path)
    while current is not None and len(chain) < MAX_FILES and current not in chain:
        chain.append(current)
        text = read_text(current, MAX_SCENARIO_BYTES, "a scenario YAML file")
        parent = next((m["file"] for m in map(_EXTENDS.match, text.splitlines()) if m), None)
        if parent is None:
            current = None
        else:
            nxt = current.parent / parent
            current = nxt if nxt.suffix else nxt.with_suffix(".yaml")
    sources: dict[str, str] = {}
    for file in reversed(chain):                 # the root first; each file overrides what it extends
        tagged, keys = file_sources(read_text(file, MAX_SCENARIO_BYTES, "a scenario YAML file"))
        for key in keys:
            if key not in tagged:
                sources.pop(key, None)
        sources.update(tagged)
    return sources


def without_overridden(sources: dict[str, str], overrides: list[str]) -> dict[str, str]:
    """`sources` less every key a `--set key=value` changed (and the keys under it)."""
    changed = [text.split("=", 1)[0].strip() for text in overrides if "=" in text]
    return {k: v for k, v in sources.items()
            if not any(k == c or k.startswith(c + ".") or c.startswith(k + ".") for c in changed)}
