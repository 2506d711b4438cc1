"""The report as a list of blocks, rendered to Markdown (report.md) and to one self-contained HTML page.

Text in blocks is a small Markdown dialect: `**bold**`, `*italic*`, `` `code` `` and backslash escapes. User
text (titles, descriptions, scenario values) goes through `format.md_escape` first; the HTML renderer escapes
every run of text with `html.escape`, so nothing in a scenario can become markup.
"""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path


_INLINE = re.compile(r"\\(.)|\*\*(.+?)\*\*|\*((?:\\.|[^*\\])+)\*|`([^`]+)`")


def _inline_html(text: str) -> str:
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


@dataclass
class Block:
    kind: str                   # h1 subtitle h2 p ul table img
    text: str = ""
    items: list = field(default_factory=list)
    header: list = field(default_factory=list)
    image: Path | None = None
    rel: str = ""


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind == "h1":
            out.append(f"# {b.text}\n")
        elif b.kind == "h2":
            out.append(f"## {b.text}\n")
        elif b.kind in ("p", "subtitle"):
            out.append(b.text + "\n")
        elif b.kind == "ul":
            out.append("\n".join(f"- {x}" for x in b.items) + "\n")
        elif b.kind == "table":
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + "|".join("---" for _ in b.header) + "|")
            for row in b.items:
                out.append("| " + " | ".join(str(c).replace("\n", " ") for c in row) + " |")
            out.append("")
        elif b.kind == "img":
            out.append(f"![{b.text}]({b.rel})\n")
            if b.items:
                out.append(f"*{b.items[0]}*  \nVector version: [{Path(b.rel).with_suffix('.svg').name}]"
                           f"({Path(b.rel).with_suffix('.svg').as_posix()})\n")
    return "\n".join(out).rstrip() + "\n"


CSS = """
body{font-family:Arial,Helvetica,"Liberation Sans",sans-serif;color:#212b32;background:#f0f4f5;margin:0;line-height:1.5}
header{background:#005EB8;color:#fff;padding:24px 32px}
header h1{margin:0;font-size:1.7em}
header p{margin:6px 0 0;color:#E8EDEE}
main{max-width:1040px;margin:0 auto;padding:8px 32px 40px;background:#fff}
h2{color:#003087;border-bottom:3px solid #005EB8;padding-bottom:4px;margin-top:36px}
ul.headlines li{margin:8px 0;font-size:1.05em}
figure{margin:16px 0 24px}
figure img{max-width:100%;height:auto;border:1px solid #E8EDEE}
figcaption{color:#425563;font-size:.92em;margin-top:6px}
table{border-collapse:collapse;width:100%;margin:12px 0 20px;font-size:.93em}
th{background:#005EB8;color:#fff;text-align:left;padding:6px 8px;font-weight:bold}
td{border-bottom:1px solid #E8EDEE;padding:5px 8px;vertical-align:top}
tr:nth-child(even) td{background:#f7f9fa}
td.key{color:#425563;width:40%}
.note{color:#425563;font-size:.92em}
code{font-family:Consolas,"Courier New",monospace;font-size:.95em;background:#f0f4f5;padding:0 3px}
footer{max-width:1040px;margin:0 auto;padding:12px 32px;color:#768692;font-size:.85em}
@media print{body{background:#fff}main{padding:0}header{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
""".strip()


def render_html(blocks: list[Block], title: str, subtitle: str) -> str:
    body: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "subtitle"):
            continue                     # the page header carries the title and subtitle
        if b.kind == "h2":
            body.append(f"<h2>{_inline_html(b.text)}</h2>")
        elif b.kind == "p":
            body.append(f"<p>{_inline_html(b.text)}</p>")
        elif b.kind == "ul":
            cls = ' class="headlines"' if b.text == "headlines" else ""
            body.append(f"<ul{cls}>" + "".join(f"<li>{_inline_html(x)}</li>" for x in b.items) + "</ul>")
        elif b.kind == "table":
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in b.header)
            rows = []
            key_cls = ' class="key"'
            for row in b.items:
                cells = "".join(f"<td{key_cls if i == 0 and b.text == 'kv' else ''}>{_inline_html(str(c))}</td>"
                                for i, c in enumerate(row))
                rows.append(f"<tr>{cells}</tr>")
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
        elif b.kind == "img":
            data = base64.b64encode(b.image.read_bytes()).decode("ascii")
            cap = f"<figcaption>{_inline_html(b.items[0])}</figcaption>" if b.items else ""
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b.text)}">{cap}</figure>')
    return ("<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n"
            f"<header><h1>{html.escape(title)}</h1><p>{_inline_html(subtitle)}</p></header>\n<main>\n"
            + "\n".join(body) +
            "\n</main>\n<footer>Generated by sim.outputs.report from the saved files of the run folder; the model was not "
            "re-run. Charts are also saved as PNG and SVG in the charts/ folder; the tables are in results.xlsx."
            "</footer>\n</body>\n</html>\n")
