"""Scenario text made safe for each output: the one place that turns a string a user wrote (a title, a
description, a site, specialty or hub name, a key, a path, a note, a command line) into text that each output
shows as written and that cannot act there.

Every format first drops what no output can hold (`plain`): control characters other than tab and line feed
(NUL, ESC and the rest of C0, DEL, C1), lone surrogates and the non-characters U+FFFE and U+FFFF; line breaks are
written as a line feed. It also drops the bidirectional embedding, override and isolate controls (U+202A-U+202E,
U+2066-U+2069): invisible, they make a reader's screen show the letters after them in another order than written
(U+202E then "etis" reads "site"), so a name could pass for another in a board paper or the terminal.
Right-to-left names need none of them: their letters carry their own direction. Then, by format:

- results.xlsx: `cell_text` also cuts at Excel's 32,767 characters a cell; each text is written as a string and
  `starts_like_formula` says which need Excel's quote prefix, so text starting with =, +, - or @ is never a
  formula, not even after someone edits the cell.
- report.md (and report.html, which is rendered from the same Markdown dialect and escapes every run of text):
  `md_text` puts a backslash before every character that could start markup (emphasis, code, links, images,
  raw HTML, entities, table cells, headings, maths, strikethrough) and before the `:` of `://`, the `.` of `www.`
  and the `@` that would make an address a link, and writes line breaks as spaces, so nothing can start a list,
  a heading or a new paragraph; `md_emphasis` and `md_code` wrap it in the dialect's emphasis and code spans.
- report.html: `html_text` for text put into the page outside the dialect (the page title, an image's alt).
- report.docx: `docx_text` for every run of text (the dialect's runs with their escapes undone, and plain
  titles): one line, tabs as spaces. python-docx writes a run's text as the characters of a w:t element (XML
  escaped by lxml, which refuses the control characters `plain` drops), never as a field, a hyperlink or markup;
  its setter would turn a tab or line feed into a tab or break element, which `docx_text` leaves none of.
- charts: matplotlib reads `$...$` as mathematics (a crash on broken TeX, mangled text otherwise) and can hand
  text to LaTeX; `CHART_RC` turns both off while a chart is built and saved, and `draw_as_written(fig)` turns
  them off on every text of a finished figure. `chart_label` writes a name on one line, cut at 100 characters
  with an ellipsis: a legend or a title cannot show thousands of characters (the report and workbook do).
- the terminal: `terminal_text` (no escape sequences reach the terminal; one line).

CSV files are left as written: they are the run's data, read back by `report`, pandas and R, and only names
(never free text) go into them. Numbers and ordinary names never change in any format.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

EXCEL_CELL_CHARS = 32_767          # the most characters an Excel cell holds
CHART_LABEL_CHARS = 100            # longer names are cut in charts (legends, titles, tick labels)
ELLIPSIS = "…"

# Not representable in XML 1.0 (a worksheet cannot hold them), or terminal control codes (ESC starts a sequence, and
# C1's CSI is one on its own), or not encodable as UTF-8 (a lone surrogate), or bidirectional embedding, override and
# isolate controls (they reorder what is shown; see the module docstring).
_UNHOLDABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]")
_LINE_BREAK = re.compile(r"\r\n?|[\u0085\u2028\u2029]")
_BREAKS = re.compile(r"\s*\n\s*")
# Markdown: characters that could start markup anywhere in a line, `&` where it would start a character
# reference, and what GitHub-flavoured Markdown turns into a link on its own (scheme://, www., an address).
_MD_SPECIAL = re.compile(r"[\\`*_\[\]<>|#$~^]|&(?=#?\w+;)|(?<=\w):(?=//)|(?<=\bwww)\.|@")
_FORMULA_START = ("=", "+", "-", "@")


def plain(text: Any) -> str:
    """`text` as a string with the characters no output can hold removed and line breaks as line feeds."""
    return _UNHOLDABLE.sub("", _LINE_BREAK.sub("\n", str(text)))


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + ELLIPSIS


def one_line(text: Any) -> str:
    """`plain(text)` with each line break (and the spaces around it) written as one space."""
    return _BREAKS.sub(" ", plain(text))


# --------------------------------------------------------------------------------------------------------------
# Spreadsheet (results.xlsx)
# --------------------------------------------------------------------------------------------------------------

def cell_text(text: Any) -> str:
    """A cell's text: `plain`, cut to the characters an Excel cell holds."""
    return _shortened(plain(text), EXCEL_CELL_CHARS)


def starts_like_formula(text: str) -> bool:
    """Whether a cell's text would read as a formula in Excel (=, +, - or @ first): it is then written as a string
    with Excel's quote prefix, which keeps it text even when someone edits the cell."""
    return text.startswith(_FORMULA_START)


# --------------------------------------------------------------------------------------------------------------
# Markdown (report.md) and HTML (report.html)
# --------------------------------------------------------------------------------------------------------------

def md_text(text: Any) -> str:
    """`text` as literal characters of the report's Markdown, on one line: nothing in it can become emphasis,
    code, a link, an image, raw HTML, an entity, a table cell break, a heading, a list or maths. The HTML
    renderer (sim.outputs.report.documents) undoes the backslashes and escapes what they protected."""
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), one_line(text))


def md_emphasis(text: Any) -> str:
    """`text` in italics (a scenario's title in a sentence); empty text stays empty rather than leaving `**`,
    and spaces at either end go, since Markdown would not read `* x*` as emphasis."""
    inner = one_line(text).strip()
    return f"*{md_text(inner)}*" if inner else ""


def md_code(text: Any) -> str:
    """`text` as an inline code span (a scenario key); as escaped plain text when it holds a backtick, which
    would end the span."""
    line = one_line(text)
    return f"`{line}`" if line and "`" not in line and line.strip() == line else md_text(line)


def html_text(text: Any) -> str:
    """`text` for a place in the HTML page outside the Markdown dialect (the page title, an image's alt text)."""
    import html
    return html.escape(one_line(text), quote=True)


# --------------------------------------------------------------------------------------------------------------
# Word (report.docx)
# --------------------------------------------------------------------------------------------------------------

def docx_text(text: Any) -> str:
    """A run of text in the Word document: `one_line`, with tabs as spaces (python-docx would write a tab)."""
    return one_line(text).replace("\t", " ")


# --------------------------------------------------------------------------------------------------------------
# Charts (matplotlib)
# --------------------------------------------------------------------------------------------------------------

CHART_RC: dict[RcKeyType, Any] = {"text.parse_math": False, "text.usetex": False}


def chart_label(text: Any, limit: int = CHART_LABEL_CHARS) -> str:
    """A name as a chart shows it: one line, cut at `limit` characters with an ellipsis."""
    return _shortened(one_line(text), limit)


def draw_as_written(fig: Figure) -> Figure:
    """Every text of `fig` drawn as its characters: no `$...$` mathematics, no LaTeX. Returns `fig`."""
    from matplotlib.text import Text
    for artist in fig.findobj(Text):
        assert isinstance(artist, Text)
        artist.set_parse_math(False)
        artist.set_usetex(False)
    return fig


# --------------------------------------------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------------------------------------------

def terminal_text(text: Any) -> str:
    """A name printed to the terminal: one line, with no control character (so no escape sequence)."""
    return one_line(text)
