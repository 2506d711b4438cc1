"""report.docx: the report as a Word board paper, from the same document tree as report.md and report.html.

NHS board papers have a fixed shape, so the Word document is laid out from the parts of the tree marked with a
role (sim.outputs.report.documents.Role) rather than block by block:

    page 1 (landscape, so the summary table's row per scenario fits): title, purpose, the summary table as a Word
    table, the headline sentences, and a recommendation heading left to the paper's author;
    then (portrait): what each scenario is, the 52-week and waiting-list charts (PNG), the model against the
    published figures where the run covers any of their months, key assumptions with their sources, uncertainty in
    one paragraph, the method note, and an appendix holding every other table of the report under its section.

Text: every run is the dialect's inline text split into literal runs (documents.inline_runs: escapes undone,
emphasis and code as run formatting) and passed through sim.outputs.safe_text.docx_text, so a scenario's title is
only ever the characters of a w:t element: never a field, a hyperlink or markup. The only field is the footer's
page number.

Look: NHS identity colours (NHS Blue #005EB8 for the title and table headers, NHS Dark Blue #003087 for headings,
NHS Dark Grey #425563 for notes) and Arial, the NHS's fallback for Frutiger, set by name only: Word and LibreOffice
use Arial or a metric-compatible substitute (Liberation Sans) without a font being installed or embedded.

Tables are written as WordprocessingML rows directly (one lxml element per cell) rather than through python-docx's
cell objects, which look every cell up again: the default run's appendix has a few hundred cells.
"""
from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable
from copy import deepcopy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.outputs.report.documents import Block, Bullets, Document, Figure, Heading, Paragraph, Table, inline_runs
from sim.outputs.safe_text import docx_text

if TYPE_CHECKING:
    from docx.document import Document as WordDocument

NHS_BLUE = "005EB8"
NHS_DARK_BLUE = "003087"
NHS_DARK_GREY = "425563"
NHS_PALE_GREY = "E8EDEE"
TEXT_COLOUR = "212B32"
FONT = "Arial"
BODY_PT = 10
TABLE_PT = 8
KEY_CHARTS = ("waiting_over_52w", "waiting_list")
RECOMMENDATION = ("For the paper's author: what the board is asked to note, discuss or approve. The simulator "
                  "gives the figures; it makes no recommendation.")


def render_docx(doc: Document, path: Path) -> None:
    """Write `doc` as a Word document at `path`."""
    from docx import Document as new_document
    from docx.enum.section import WD_ORIENT, WD_SECTION
    from docx.shared import Cm

    word = new_document()
    _set_styles(word)
    props = word.core_properties
    props.title = docx_text(doc.title)
    props.author = "North West London capacity simulator"
    props.comments = "Generated from the saved files of a run folder; the model was not re-run."
    now = dt.datetime.now().replace(microsecond=0)
    props.created = props.modified = now
    props.last_modified_by = props.author

    section = word.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Cm(29.7), Cm(21.0)
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Cm(1.5))
    section.top_margin = section.bottom_margin = Cm(1.3)
    _footer(word, section, doc)

    word.add_paragraph(docx_text(doc.title), style="Title")
    _inline_paragraph(word, doc.subtitle, style="Subtitle")
    if doc.purpose:
        word.add_heading("Purpose", level=1)
        _inline_paragraph(word, doc.purpose)
    word.add_heading("Summary", level=1)
    for block in doc.with_role("summary"):
        if isinstance(block, Table):
            _table(word, block, width_cm=26.7, space_after=False)
        elif isinstance(block, Paragraph):
            note = word.add_paragraph()
            _add_runs(note, block.text, colour=NHS_DARK_GREY, size_pt=TABLE_PT)
    for block in doc.with_role("headlines"):
        if isinstance(block, Bullets):
            for item in block.items:
                _inline_paragraph(word, item, style="List Bullet")
    word.add_heading("Recommendation", level=1)
    note = word.add_paragraph()
    _add_runs(note, RECOMMENDATION, colour=NHS_DARK_GREY, italic=True)

    body = word.add_section(WD_SECTION.NEW_PAGE)
    body.orientation = WD_ORIENT.PORTRAIT
    body.page_width, body.page_height = Cm(21.0), Cm(29.7)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(body, side, Cm(2.0))

    scenarios = doc.with_role("scenarios")
    if scenarios:
        word.add_heading("The scenarios", level=1)
        for block in scenarios:
            _block(word, block, width_cm=17.0)
    figures = {b.stem: b for b in doc.blocks if isinstance(b, Figure)}
    shown = [figures[s] for s in KEY_CHARTS if s in figures]
    if shown:
        word.add_heading("Key figures", level=1)
        for fig in shown:
            _figure(word, fig, width_cm=16.5)
    published = [b for b in doc.with_role("published") if isinstance(b, Table | Paragraph)]
    if published:
        word.add_heading("Against the published figures", level=1)
        for block in published:
            _block(word, block, width_cm=17.0)
    key = [b for b in doc.with_role("key_assumptions") if isinstance(b, Table | Paragraph)]
    if key:
        word.add_heading("Key assumptions", level=1)
        for block in key:
            _block(word, block, width_cm=17.0)
    uncertainty = doc.with_role("uncertainty")
    if uncertainty:
        word.add_heading("Uncertainty", level=1)
        for block in uncertainty:
            _block(word, block, width_cm=17.0)
    method = doc.with_role("method")
    if method:
        word.add_heading("Method", level=1)
        for block in method:
            _block(word, block, width_cm=17.0)
    appendix = list(_appendix(doc.blocks))
    if appendix:
        word.add_page_break()
        word.add_heading("Appendix: tables", level=1)
        for heading, blocks in appendix:
            word.add_heading(docx_text(_plain(heading)), level=2)
            for block in blocks:
                _block(word, block, width_cm=17.0)
    buffer = io.BytesIO()
    word.save(buffer)
    Path(path).write_bytes(buffer.getvalue())


def _plain(text: str) -> str:
    return "".join(run[0] for run in inline_runs(text))


def _appendix(blocks: list[Block]) -> Iterable[tuple[str, list[Block]]]:
    """Every table of the detail (no role) under its section's heading, with the short paragraph just before a
    table when there is one (the finance tables' scenario names)."""
    heading = ""
    found: list[Block] = []
    previous: Block | None = None
    for block in blocks:
        if isinstance(block, Heading):
            if found:
                yield heading, found
            heading, found = block.text, []
        elif isinstance(block, Table) and block.role == "":
            if isinstance(previous, Paragraph) and previous.role == "" and len(previous.text) <= 160:
                found.append(previous)
            found.append(block)
        previous = block
    if found:
        yield heading, found


# ---------------------------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------------------------


def _block(word: WordDocument, block: Block, width_cm: float) -> None:
    if isinstance(block, Heading):
        word.add_heading(docx_text(_plain(block.text)), level=2)
    elif isinstance(block, Paragraph):
        _inline_paragraph(word, block.text)
    elif isinstance(block, Bullets):
        for item in block.items:
            _inline_paragraph(word, item, style="List Bullet")
    elif isinstance(block, Table):
        _table(word, block, width_cm=width_cm)
    elif isinstance(block, Figure):
        _figure(word, block, width_cm)
    else:
        raise TypeError(f"not a report block: {block!r}")


def _inline_paragraph(word: WordDocument, text: str, style: str | None = None) -> Any:
    para = word.add_paragraph(style=style)
    _add_runs(para, text)
    return para


def _add_runs(para: Any, text: str, colour: str | None = None, italic: bool = False, size_pt: float | None = None,
              bold: bool = False) -> None:
    from docx.shared import Pt, RGBColor
    for chunk, is_bold, is_italic, is_code in inline_runs(text):
        run = para.add_run(docx_text(chunk))
        if is_bold or bold:
            run.bold = True
        if is_italic or italic:
            run.italic = True
        if is_code:
            run.font.name = "Courier New"
        if colour:
            run.font.color.rgb = RGBColor.from_string(colour)
        if size_pt:
            run.font.size = Pt(size_pt)


def _figure(word: WordDocument, fig: Figure, width_cm: float) -> None:
    from docx.shared import Cm
    word.add_picture(str(fig.image), width=Cm(width_cm))
    picture = word.paragraphs[-1]
    for element in picture._p.iter():          # the image's description: its title, as text
        if element.tag.endswith("}docPr"):
            element.set("descr", docx_text(fig.title))
    if fig.caption:
        cap = word.add_paragraph(style="Caption")
        _add_runs(cap, fig.caption, colour=NHS_DARK_GREY)


# ---------------------------------------------------------------------------------------------------------------
# Tables, built as XML rows
# ---------------------------------------------------------------------------------------------------------------


def _table(word: WordDocument, table: Table, width_cm: float, space_after: bool = True) -> None:
    """A Word table: header row in NHS Blue with white bold text, repeated on each page; rows banded."""
    from docx.oxml.ns import qn
    from docx.shared import Cm

    n_cols = max([len(table.header)] + [len(r) for r in table.rows])
    grid = word.add_table(rows=0, cols=n_cols)
    grid.style = "Table Grid"
    grid.autofit = False
    width = Cm(width_cm)
    widths = [int(width * share) for share in _column_shares(table, n_cols)]
    tbl = grid._tbl
    for col, w in zip(tbl.tblGrid.findall(qn("w:gridCol")), widths, strict=True):
        col.set(qn("w:w"), str(int(w / 635)))          # EMU -> twentieths of a point
    size = TABLE_PT * 2                                  # half-points
    template_run = _run_properties(size)
    tbl.append(_row(table.header, widths, header=True, band=False, size_rpr=template_run))
    for i, row in enumerate(table.rows):
        cells = list(row) + [""] * (n_cols - len(row))
        tbl.append(_row(cells, widths, header=False, band=i % 2 == 1, size_rpr=template_run,
                        first_bold=table.style == "summary"))
    if space_after:
        word.add_paragraph()


def _column_shares(table: Table, n_cols: int) -> list[float]:
    """Each column's share of the table's width: by the longest text in its body (its header's longest word at
    least), within bounds, so a date range gets room and a percentage does not."""
    from math import sqrt
    need = []
    for j in range(n_cols):
        header = _plain(table.header[j]) if j < len(table.header) else ""
        body = [len(_plain(str(r[j]))) for r in table.rows if j < len(r)]
        longest_word = max((len(w) for w in header.split()), default=4)
        length = max(body, default=4)             # short cells on one line; long ones wrap, growing slowly
        need.append(3 + max(min(length, 11) + 1.2 * sqrt(max(length - 11, 0)), longest_word + 1, 6))   # 3: padding
    if table.style == "kv" and n_cols == 2:
        return [0.4, 0.6]
    total = sum(need)
    return [n / total for n in need]


def _run_properties(size_half_points: int) -> Any:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    rpr = OxmlElement("w:rPr")
    fonts = OxmlElement("w:rFonts")
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(attr), FONT)
    rpr.append(fonts)
    for tag in ("w:sz", "w:szCs"):
        el = OxmlElement(tag)
        el.set(qn("w:val"), str(size_half_points))
        rpr.append(el)
    return rpr


def _row(cells: list[str], widths: list[int], header: bool, band: bool, size_rpr: Any,
         first_bold: bool = False) -> Any:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    tr = OxmlElement("w:tr")
    if header:
        trpr = OxmlElement("w:trPr")
        repeat = OxmlElement("w:tblHeader")
        trpr.append(repeat)
        no_split = OxmlElement("w:cantSplit")
        trpr.append(no_split)
        tr.append(trpr)
    for j, (text, w) in enumerate(zip(cells, widths, strict=True)):
        tc = OxmlElement("w:tc")
        tcpr = OxmlElement("w:tcPr")
        tcw = OxmlElement("w:tcW")
        tcw.set(qn("w:w"), str(int(w / 635)))
        tcw.set(qn("w:type"), "dxa")
        tcpr.append(tcw)
        fill = NHS_BLUE if header else ("F7F9FA" if band else None)
        if fill:
            shd = OxmlElement("w:shd")
            shd.set(qn("w:val"), "clear")
            shd.set(qn("w:color"), "auto")
            shd.set(qn("w:fill"), fill)
            tcpr.append(shd)
        tc.append(tcpr)
        p = OxmlElement("w:p")
        ppr = OxmlElement("w:pPr")
        spacing = OxmlElement("w:spacing")
        spacing.set(qn("w:before"), "0")
        spacing.set(qn("w:after"), "0")
        ppr.append(spacing)
        p.append(ppr)
        for chunk, bold, italic, code in inline_runs(str(text)):
            r = OxmlElement("w:r")
            rpr = deepcopy(size_rpr)
            if bold or header or (first_bold and j == 0):
                rpr.append(OxmlElement("w:b"))
            if italic:
                rpr.append(OxmlElement("w:i"))
            if header:
                colour = OxmlElement("w:color")
                colour.set(qn("w:val"), "FFFFFF")
                rpr.append(colour)
            if code:
                fonts = rpr.find(qn("w:rFonts"))
                for attr in ("w:ascii", "w:hAnsi", "w:cs"):
                    fonts.set(qn(attr), "Courier New")
            r.append(_ordered_rpr(rpr))
            t = OxmlElement("w:t")
            t.text = docx_text(chunk)
            t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
            r.append(t)
            p.append(r)
        tc.append(p)
        tr.append(tc)
    return tr


_RPR_ORDER = ("rFonts", "b", "i", "color", "sz", "szCs")


def _ordered_rpr(rpr: Any) -> Any:
    """w:rPr's children in the order the schema requires (Word refuses a file with them out of order)."""
    children = sorted(rpr, key=lambda el: _RPR_ORDER.index(el.tag.rsplit("}", 1)[1]))
    for el in list(rpr):
        rpr.remove(el)
    for el in children:
        rpr.append(el)
    return rpr


# ---------------------------------------------------------------------------------------------------------------
# Styles, footer
# ---------------------------------------------------------------------------------------------------------------


def _set_styles(word: WordDocument) -> None:
    """Arial throughout (by name, with the East Asian and complex-script slots too, so no theme font shows
    through), NHS colours for the title and headings."""
    from docx.oxml.ns import qn
    from docx.shared import Pt, RGBColor

    def font(style_name: str, size: float, colour: str, bold: bool | None = None) -> None:
        style = word.styles[style_name]
        style.font.name = FONT
        style.font.size = Pt(size)
        style.font.color.rgb = RGBColor.from_string(colour)
        if bold is not None:
            style.font.bold = bold
        rpr = style.element.get_or_add_rPr()
        fonts = rpr.find(qn("w:rFonts"))
        for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
            fonts.set(qn(attr), FONT)
        for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:cstheme", "w:eastAsiaTheme"):
            fonts.attrib.pop(qn(attr), None)

    font("Normal", BODY_PT, TEXT_COLOUR)
    font("Title", 22, NHS_BLUE, bold=True)
    font("Subtitle", 11, NHS_DARK_GREY, bold=False)
    font("Heading 1", 14, NHS_DARK_BLUE, bold=True)
    font("Heading 2", 12, NHS_DARK_BLUE, bold=True)
    font("Caption", 8.5, NHS_DARK_GREY, bold=False)
    font("List Bullet", BODY_PT + 1, TEXT_COLOUR)
    title = word.styles["Title"].element
    ppr = title.find(qn("w:pPr"))
    if ppr is not None:                  # the default template's Title has a blue rule under it: NHS Blue
        for border in ppr.iter(qn("w:bottom")):
            border.set(qn("w:color"), NHS_BLUE)
    for name in ("Subtitle", "Caption"):
        word.styles[name].font.italic = False


def _footer(word: WordDocument, section: Any, doc: Document) -> None:
    """Footer: what made the paper, and the page number (a PAGE field: the document's only field)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Pt, RGBColor

    para = section.footer.paragraphs[0]
    run = para.add_run("North West London capacity simulator · figures from the run's saved files · page ")
    run.font.size = Pt(8)
    run.font.color.rgb = RGBColor.from_string(NHS_DARK_GREY)
    for kind, text in (("begin", None), (None, "PAGE"), ("separate", None), (None, None), ("end", None)):
        r = para.add_run()
        r.font.size = Pt(8)
        r.font.color.rgb = RGBColor.from_string(NHS_DARK_GREY)
        if kind:
            fld = OxmlElement("w:fldChar")
            fld.set(qn("w:fldCharType"), kind)
            r._r.append(fld)
        elif text:
            instr = OxmlElement("w:instrText")
            instr.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
            instr.text = text
            r._r.append(instr)
        else:
            r.text = "1"
