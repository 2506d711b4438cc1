"""The report as a document of typed blocks, rendered to Markdown (report.md), to one self-contained HTML page and
(sim.outputs.report.docx) to a Word board paper.

Text inside blocks is a small Markdown dialect: `**bold**`, `*italic*`, `` `code` `` and backslash escapes.
Anything a user wrote (titles, descriptions, scenario values, paths) goes through sim.outputs.safe_text
(`md_text`, `md_emphasis`, `md_code`) before it is put into that dialect; the HTML renderer undoes the escapes
and passes every run of text through `html.escape`, so nothing in a scenario can become markup in either file.
The document title and a figure's title are plain text, made safe by each renderer.

Blocks may carry a `role` (`Role`) naming the part of a board paper they are: the Word document is laid out from
those parts (purpose, summary, headlines, scenarios, against the published figures, key assumptions,
uncertainty, method) and an appendix of the other tables, while Markdown and HTML show every block in order. One
tree, so each number reads the same in every file.

The HTML page shell and its style sheet are package data (page.html, a string.Template, and report.css).
"""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Literal

from sim.outputs.run_folder import CHARTS_DIR, RESULTS_XLSX
from sim.outputs.safe_text import html_text, md_text

_INLINE = re.compile(r"\\(.)|\*\*(.+?)\*\*|\*((?:\\.|[^*\\])+)\*|`([^`]+)`")


def _inline_html(text: str) -> str:
    """The dialect's inline text as HTML: every run of characters escaped, emphasis and code as elements."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append(html.escape(m.group(1)))
        elif m.group(2) is not None:
            out.append(f"<strong>{_inline_html(m.group(2))}</strong>")
        elif m.group(3) is not None:
            out.append(f"<em>{_inline_html(m.group(3))}</em>")
        else:
            out.append(f"<code>{html.escape(m.group(4))}</code>")
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def inline_runs(text: str, bold: bool = False, italic: bool = False) -> list[tuple[str, bool, bool, bool]]:
    """The dialect's inline text as runs of literal characters: (text, bold, italic, code), escapes undone. For
    renderers that set text run by run (the Word document) and for the dialect as plain text."""
    out: list[tuple[str, bool, bool, bool]] = []
    pos = 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            out.append((text[pos:m.start()], bold, italic, False))
        if m.group(1) is not None:
            out.append((m.group(1), bold, italic, False))
        elif m.group(2) is not None:
            out += inline_runs(m.group(2), True, italic)
        elif m.group(3) is not None:
            out += inline_runs(m.group(3), bold, True)
        else:
            out.append((m.group(4), bold, italic, True))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], bold, italic, False))
    return out


def plain_text(text: str) -> str:
    """The dialect's inline text as the characters a reader sees (no emphasis, escapes undone)."""
    return "".join(run[0] for run in inline_runs(text))


# ---------------------------------------------------------------------------------------------------------------
# Blocks: text fields hold the inline dialect unless said otherwise
# ---------------------------------------------------------------------------------------------------------------


# The parts of a board paper a block can be ("": a block of the detail, in the Word document's appendix if a table)
Role = Literal["", "summary", "headlines", "scenarios", "published", "key_assumptions", "uncertainty", "method"]


@dataclass(frozen=True)
class Heading:
    """A section heading (## in Markdown, h2 in HTML)."""

    text: str
    role: Role = ""


@dataclass(frozen=True)
class Paragraph:
    text: str
    role: Role = ""


@dataclass(frozen=True)
class Bullets:
    """A bulleted list; `headlines` is the larger, spaced list at the top of the report."""

    items: list[str]
    style: Literal["plain", "headlines"] = "plain"
    role: Role = ""


@dataclass(frozen=True)
class Table:
    """A table with a header row; `kv` marks the first column as the row's name (shown muted in HTML); `summary`
    is the one table the report opens with (a row per scenario, first column its name)."""

    header: list[str]
    rows: list[list[str]]
    style: Literal["plain", "kv", "summary"] = "plain"
    role: Role = ""


@dataclass(frozen=True)
class Figure:
    """A chart: the PNG is linked from report.md and embedded in report.html; an SVG sits beside the PNG."""

    title: str          # plain text: the image's alternative text
    caption: str
    image: Path         # the PNG on disk
    rel: str            # its path relative to the report

    @property
    def stem(self) -> str:
        """The chart's name (waiting_over_52w, waiting_list, ...)."""
        return Path(self.rel).stem


Block = Heading | Paragraph | Bullets | Table | Figure


@dataclass
class Document:
    title: str                      # plain text
    subtitle: str
    blocks: list[Block] = field(default_factory=list)
    purpose: str = ""               # what the paper is for, in one paragraph (the Word document's first section)

    def with_role(self, role: Role) -> list[Block]:
        """The blocks that are this part of a board paper, in order."""
        return [b for b in self.blocks if not isinstance(b, Figure) and b.role == role]

    def summary_table(self) -> Table:
        """The table the report opens with."""
        return next(b for b in self.with_role("summary") if isinstance(b, Table))


# ---------------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------------


def render_markdown(doc: Document) -> str:
    out: list[str] = [f"# {md_text(doc.title)}\n", f"*{doc.subtitle}*\n"]
    if doc.purpose:
        out.append(doc.purpose + "\n")
    for b in doc.blocks:
        if isinstance(b, Heading):
            out.append(f"## {b.text}\n")
        elif isinstance(b, Paragraph):
            out.append(b.text + "\n")
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {x}" for x in b.items) + "\n")
        elif isinstance(b, Table):
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + "|".join("---" for _ in b.header) + "|")
            for row in b.rows:
                out.append("| " + " | ".join(str(c).replace("\n", " ") for c in row) + " |")
            out.append("")
        elif isinstance(b, Figure):
            svg = Path(b.rel).with_suffix(".svg")
            out.append(f"![{md_text(b.title)}]({b.rel})\n")
            if b.caption:
                out.append(f"*{b.caption}*  \nVector version: [{svg.name}]({svg.as_posix()})\n")
        else:
            raise TypeError(f"not a report block: {b!r}")
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------------------------


def _package_text(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _html_block(b: Block) -> str:
    if isinstance(b, Heading):
        return f"<h2>{_inline_html(b.text)}</h2>"
    if isinstance(b, Paragraph):
        return f"<p>{_inline_html(b.text)}</p>"
    if isinstance(b, Bullets):
        cls = ' class="headlines"' if b.style == "headlines" else ""
        return f"<ul{cls}>" + "".join(f"<li>{_inline_html(x)}</li>" for x in b.items) + "</ul>"
    if isinstance(b, Table):
        head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.header)
        key = ' class="key"' if b.style in ("kv", "summary") else ""
        rows = "".join("<tr>" + "".join(f"<td{key if i == 0 else ''}>{_inline_html(str(c))}</td>"
                                        for i, c in enumerate(row)) + "</tr>" for row in b.rows)
        cls = ' class="summary"' if b.style == "summary" else ""
        return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(b, Figure):
        data = base64.b64encode(b.image.read_bytes()).decode("ascii")
        cap = f"<figcaption>{_inline_html(b.caption)}</figcaption>" if b.caption else ""
        return f'<figure><img src="data:image/png;base64,{data}" alt="{html_text(b.title)}">{cap}</figure>'
    raise TypeError(f"not a report block: {b!r}")


def render_html(doc: Document) -> str:
    """One self-contained page: the style sheet inline and every chart embedded, no scripts, no links out."""
    page = Template(_package_text("page.html"))
    purpose = f'<p class="purpose">{_inline_html(doc.purpose)}</p>' if doc.purpose else ""
    return page.substitute(title=html_text(doc.title), subtitle=_inline_html(doc.subtitle), purpose=purpose,
                           css=_package_text("report.css").strip(),
                           body="\n".join(_html_block(b) for b in doc.blocks),
                           charts_dir=html.escape(CHARTS_DIR), workbook=html.escape(RESULTS_XLSX))
