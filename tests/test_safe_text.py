"""A corpus of hostile strings, each put through every output format the way the report puts scenario text:
a spreadsheet cell never becomes a formula and keeps the text minus characters a sheet cannot hold; Markdown
has no live markup, table break or link; the HTML page holds only the report's own elements; a chart draws the
text as written, never as mathematics. Each output is built once for the whole corpus and checked per string."""
from __future__ import annotations

import datetime as dt
import re
import warnings

import numpy as np
import openpyxl
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from sim.outputs import charts
from sim.outputs.backtest import METRICS
from sim.outputs.report.documents import Bullets, Document, Paragraph, Table, render_html, render_markdown
from sim.outputs.report.workbook import write_sheets
from sim.outputs.safe_text import md_code, md_emphasis, md_text
from test_report_escaping import _check_inert, _live_specials, _Page, _unescape_markdown

pytestmark = pytest.mark.unit

CORPUS = {
    "hyperlink": '=HYPERLINK("http://x","y")',
    "plus_dde": "+cmd|' /C calc'!A0",
    "minus": "-2+3+cmd|' /C calc'!A0",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "tab_formula": "\t=1+1",
    "script": "<script>alert(1)</script>",
    "img_onerror": '<img src=x onerror="alert(2)">',
    "md_link": "[click](javascript:alert(3)) ![i](x.png) <https://e.example>",
    "autolink": "see https://evil.example, www.evil.example and a@evil.example",
    "pipes": "a | b || c |",
    "backticks": "`code` and ``two`` `",
    "maths": "$x^2$",
    "double_dollar": "$$",
    "unbalanced": "cost $5 \\ ^ _ { and \\$",
    "broken_tex": "$\\frac{1}{$ \\alpha_1 $",
    "entities": "&lt;b&gt; &amp; &#60;script&#62;",
    "newlines": "first\nsecond\r\n- item\n# heading\n---\n    code\rlast",
    "controls": "nul\x00bell\x07esc\x1b[31mred\x7fdel\x9bcsi\ud800end",
    "direction": "rate\u202e%05\u202c of \u2067site\u2069 \u202aand\u202b \u202dhub\u2066",
    "underscore": "_hidden",
    "emphasis": "*star* **bold** ~~strike~~ _under_ ^sup^",
    "long": "x" * 4000 + " end",
}
IDS = list(CORPUS)

_UNHOLDABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """What a spreadsheet cell shows: the text without control characters, line breaks as line feeds."""
    return _UNHOLDABLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def one_line(text: str) -> str:
    """What a paragraph, table cell or legend shows: `visible`, each line break a single space."""
    return re.sub(r"\s*\n\s*", " ", visible(text))


def chart_text(text: str) -> str:
    """What a chart shows of a name: one line, at most 100 characters (the last an ellipsis)."""
    line = one_line(text)
    return line if len(line) <= 100 else line[:99] + "…"


# ---------------------------------------------------------------------------------------------------------------
# results.xlsx
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_sheet(tmp_path_factory) -> openpyxl.worksheet.worksheet.Worksheet:
    """One sheet: a column headed by each string, holding it; and a number column that must stay a number."""
    path = tmp_path_factory.mktemp("xlsx") / "corpus.xlsx"
    table = pd.DataFrame({text: [text, 1.5] for text in CORPUS.values()} | {"count": [-3, 4]})
    write_sheets(path, [("corpus", table, "A2")])
    return openpyxl.load_workbook(path)["corpus"]


@pytest.mark.parametrize("case", IDS)
def test_a_cell_shows_the_text_and_never_a_formula(corpus_sheet, case):
    text = CORPUS[case]
    column = IDS.index(case) + 1
    for cell in (corpus_sheet.cell(row=1, column=column), corpus_sheet.cell(row=2, column=column)):
        assert cell.data_type == "s", f"expected {cell.coordinate} typed as text, saw {cell.data_type!r}"
        assert cell.value == visible(text), f"expected {cell.coordinate} to read as written, saw {cell.value!r}"
        if cell.value.startswith(("=", "+", "-", "@")):
            assert cell.quotePrefix, f"expected Excel's quote prefix on {cell.coordinate}, which starts a formula"
    assert corpus_sheet.cell(row=3, column=column).data_type == "n", "a number beside it must stay a number"


def test_numbers_stay_numbers_beside_hostile_text(corpus_sheet):
    column = len(CORPUS) + 1
    cells = [corpus_sheet.cell(row=r, column=column) for r in (2, 3)]
    assert [(c.value, c.data_type) for c in cells] == [(-3, "n"), (4, "n")], "expected -3 and 4 as numbers"


def test_a_cell_longer_than_excel_holds_is_cut(tmp_path):
    path = tmp_path / "long.xlsx"
    write_sheets(path, [("long", pd.DataFrame({"text": ["=" + "y" * 40_000]}), "A2")])
    cell = openpyxl.load_workbook(path)["long"]["A2"]
    assert len(cell.value) == 32_767 and cell.value.endswith("…") and cell.data_type == "s", \
        f"expected the text cut to Excel's 32,767 characters, saw {len(cell.value)}"


# ---------------------------------------------------------------------------------------------------------------
# report.md and report.html
# ---------------------------------------------------------------------------------------------------------------


def _document() -> Document:
    """Every string in each kind of place the report puts scenario text, between markers A and Z."""
    blocks: list = []
    for case, text in CORPUS.items():
        blocks += [Paragraph(f"A{case} {md_text(text)} Z"),
                   Paragraph(f"E{case} {md_emphasis(text)}: Z"),
                   Paragraph(f"C{case} {md_code(text)} Z"),
                   Bullets([f"B{case} {md_text(text)} Z"]),
                   Table([f"T{case}", md_text(text)], [[f"R{case}", md_text(text)]], style="kv")]
    return Document(title="Corpus", subtitle="every hostile string", blocks=blocks)


@pytest.fixture(scope="module")
def markdown_lines() -> dict[str, str]:
    """The rendered report.md, by the marker that opens each line."""
    lines = render_markdown(_document()).splitlines()
    return {line.lstrip("|- ").split(" ", 1)[0]: line for line in lines if line.lstrip("|- ")}


@pytest.fixture(scope="module")
def page() -> _Page:
    return _check_inert(render_html(_document()))


def _live_links(line: str) -> list[str]:
    """What would be markup without brackets: a character reference, and what GitHub-flavoured Markdown makes
    a link on its own (scheme://, www., an address with @)."""
    return re.findall(r"(?<!\\)&#?\w+;|(?<!\\)://|www\.|(?<!\\)@", line)


@pytest.mark.parametrize("case", IDS)
def test_markdown_shows_the_text_with_nothing_live(markdown_lines, case):
    text = CORPUS[case]
    line = markdown_lines[f"A{case}"]
    inner = line.removeprefix(f"A{case} ").removesuffix(" Z")         # the text as written into the line
    assert not _live_specials(inner, "<>*_`[]#|$~^"), f"expected every Markdown special escaped, saw {line!r}"
    assert not _live_links(inner), f"expected no entity or bare link, saw {line!r}"
    assert _unescape_markdown(line) == f"A{case} {one_line(text)} Z", f"expected the text as written, saw {line!r}"

    emphasised = markdown_lines[f"E{case}"]
    assert _live_specials(emphasised.removeprefix(f"E{case} "), "<>*_`[]#|$~^") == ["*", "*"], \
        f"expected only the emphasis around the text live, saw {emphasised!r}"
    assert _unescape_markdown(emphasised) == f"E{case} *{one_line(text).strip()}*: Z"

    for marker in (f"T{case}", f"R{case}"):     # header and row: exactly two cells, the pipes in the text escaped
        row = markdown_lines[marker]
        assert len(_live_specials(row, "|")) == 3, f"expected a two-cell table row, saw {row!r}"


@pytest.mark.parametrize("case", IDS)
def test_a_code_span_cannot_be_closed_early(markdown_lines, case):
    """A key in backticks: shown as code when it holds no backtick, else as escaped text."""
    text = CORPUS[case]
    line = markdown_lines[f"C{case}"]
    ticks = _live_specials(line, "`")
    assert ticks in ([], ["`", "`"]), f"expected one code span or none, saw {line!r}"
    if ticks:
        assert "`" not in text and line == f"C{case} `{one_line(text)}` Z", f"expected the key as code, saw {line!r}"
    else:
        assert _unescape_markdown(line) == f"C{case} {one_line(text)} Z", f"expected the key as text, saw {line!r}"


@pytest.mark.parametrize("case", IDS)
def test_html_shows_the_text_as_written(page, case):
    shown = one_line(CORPUS[case])
    assert f"A{case} {shown} Z" in page.text["p"], f"expected the paragraph to read as written: {shown[:80]!r}"
    assert f"E{case} {shown.strip()}: Z" in page.text["p"], "expected the emphasised text to read as written"
    assert f"C{case} {shown} Z" in page.text["p"], "expected the code span or text to read as written"
    assert f"B{case} {shown} Z" in page.text["li"], "expected the bullet to read as written"
    assert page.text["td"].count(shown) >= 1, "expected the table cell to read as written"


def test_the_page_title_and_heading_are_text(tmp_path):
    title = CORPUS["script"] + CORPUS["controls"] + CORPUS["newlines"]
    page = _check_inert(render_html(Document(title=title, subtitle="")))
    assert page.text["title"] == [one_line(title)] and page.text["h1"] == [one_line(title)], page.text["h1"]
    first = render_markdown(Document(title=title, subtitle="")).splitlines()[0]
    assert _unescape_markdown(first) == f"# {one_line(title)}" and not _live_specials(first[2:]), first


# ---------------------------------------------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------------------------------------------


def _texts(fig: Figure) -> list[Text]:
    fig.canvas.draw()                       # mathematics is parsed when drawn: a broken $...$ raises here
    return [t for t in fig.findobj(Text) if t.get_text()]


@pytest.fixture(scope="module")
def drawn_charts() -> list[list[Text]]:
    """The texts of the report's charts that show names, drawn once: every string a scenario title (legend), a
    provider (legend) and a clearance row (tick label)."""
    names = list(CORPUS)
    start = dt.date(2021, 6, 7)
    weekly = pd.DataFrame([{"scenario": n, "replication": r, "week": w, "week_start": start + dt.timedelta(weeks=w),
                            "waiting_over_52w": 10 - w + r} for n in names for r in (0, 1) for w in range(3)])
    weekly["week_start"] = pd.to_datetime(weekly["week_start"])
    series = charts.scenario_series(names, CORPUS)
    fan = charts.fan_chart(charts.weekly_percentiles(weekly, "waiting_over_52w"), series, title="Over 52 weeks",
                           ylabel="Patients", n_replications=2)
    medians = weekly[weekly["replication"] == 0].rename(columns={"scenario": "site"})
    providers = charts.provider_lines_chart(medians, CORPUS, "waiting_over_52w", title="By provider",
                                            ylabel="Patients", n_replications=1)
    rows = [charts.ClearanceRow(f"Over 52 weeks — {s.title}", 52, s.colour, start, start, None, 1, 2) for s in series]
    clearance = charts.clearance_chart(rows, start=start, horizon_end=start + dt.timedelta(weeks=3))
    with warnings.catch_warnings():     # missing glyphs, and layouts too narrow for such long names
        warnings.simplefilter("ignore", UserWarning)
        return [_texts(fig) for fig in (fan, providers, clearance)]


@pytest.mark.parametrize("case", IDS)
def test_a_chart_draws_the_text_as_written(drawn_charts, case):
    expected = chart_text(CORPUS[case])
    fan, providers, clearance = drawn_charts
    for texts, shown, chart in ((fan, expected, "legend"), (providers, expected, "provider legend"),
                                (clearance, f"Over 52 weeks — {expected}", "clearance rows")):
        matches = [t for t in texts if t.get_text() == shown]
        assert matches, f"expected {shown[:60]!r} drawn in the {chart}"
        for t in matches:
            assert not t.get_parse_math() and not t.get_usetex(), f"expected {shown[:60]!r} drawn as characters"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_chart_function_draws_names_as_written():
    """The command line saves the backtest, calibration and sweep charts itself: they too draw `$...$` and
    backslashes as typed, with every text of the figure set so."""
    title = CORPUS["broken_tex"] + " " + CORPUS["maths"]
    months = pd.period_range("2021-07", periods=3, freq="M").astype(str)
    monthly = pd.DataFrame({"series": "$\\x$", "month": months, "simulated_p05": 1.0, "simulated_median": 2.0,
                            "simulated_p95": 3.0, "observed": 2.5})
    backtest = pd.DataFrame([{"metric": m, "census_date": "2021-07-31", "observed": 5.0, "simulated_median": 5.0,
                              "simulated_p05": 4.0, "simulated_p95": 6.0} for m in METRICS])
    sweep = pd.DataFrame({"metric": "weeks_to_clear_52w", "p50": [10.0, np.nan],
                          "title": [CORPUS["maths"], CORPUS["broken_tex"]]})
    figures = [charts.monthly_backtest_chart(monthly, None, title, "$x$.csv"),
               charts.backtest_chart(backtest, "$June$", dt.date(2021, 6, 30), dict.fromkeys(METRICS, 5.0),
                                     title),
               charts.sweep_heatmap(sweep, ["title"], dt.date(2021, 6, 7))]
    for fig in figures:
        texts = _texts(fig)
        assert all(not t.get_parse_math() and not t.get_usetex() for t in texts), "expected every text as written"
        shown = {t.get_text() for t in texts}
        assert shown & {f"{title}: simulated against $x$.csv", f"{title}: backtest from $June$",
                        CORPUS["broken_tex"]}, f"expected the hostile name drawn as written, saw {sorted(shown)[:8]}"


def test_save_figure_writes_a_chart_with_a_broken_formula(tmp_path):
    series = charts.scenario_series(["a"], {"a": CORPUS["broken_tex"]})
    weekly = pd.DataFrame({"scenario": "a", "replication": 0, "week": [0, 1], "waiting_over_52w": [3, 1],
                           "week_start": pd.to_datetime(["2021-06-07", "2021-06-14"])})
    fig = charts.fan_chart(charts.weekly_percentiles(weekly, "waiting_over_52w"), series, title="$\\frac{$",
                           ylabel="$", n_replications=1)
    written = charts.save_figure(fig, tmp_path, "chart")
    assert [p.name for p in written] == ["chart.png", "chart.svg"] and all(p.stat().st_size for p in written)


# ---------------------------------------------------------------------------------------------------------------
# report.docx
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def word_document(tmp_path_factory):
    """The corpus document as a Word paper: its paragraphs as the method note, its bullets as the headlines (the
    parts the paper shows), its tables in the appendix."""
    import dataclasses

    import docx

    from sim.outputs.report.word import render_docx
    from test_report_escaping import _check_docx_inert
    roles = {Paragraph: "method", Bullets: "headlines", Table: ""}
    doc = _document()
    doc.blocks = [dataclasses.replace(b, role=roles[type(b)]) for b in doc.blocks]
    doc.title = CORPUS["script"] + CORPUS["controls"] + CORPUS["newlines"] + CORPUS["tab_formula"]
    path = tmp_path_factory.mktemp("docx") / "corpus.docx"
    render_docx(doc, path)
    _check_docx_inert(path)
    return docx.Document(str(path)), doc.title


def _word(text: str) -> str:
    """What a Word run shows: one line, a tab as a space."""
    return one_line(text).replace("\t", " ")


@pytest.mark.parametrize("case", IDS)
def test_word_shows_the_text_as_written_and_nothing_formatted(word_document, case):
    document, _ = word_document
    shown = _word(CORPUS[case])
    paragraphs = {p.text.split(" ", 1)[0]: p for p in document.paragraphs if p.text}
    assert paragraphs[f"A{case}"].text == f"A{case} {shown} Z", f"expected the text as written: {shown[:80]!r}"
    assert not any(r.bold or r.italic for r in paragraphs[f"A{case}"].runs), "expected no emphasis from the text"
    emphasised = paragraphs[f"E{case}"]
    assert emphasised.text == f"E{case} {shown.strip()}: Z", "expected the emphasised text as written"
    assert "".join(r.text for r in emphasised.runs if r.italic) == shown.strip(), "expected only the text in italics"
    assert paragraphs[f"C{case}"].text == f"C{case} {shown} Z", "expected the code span or text as written"
    assert paragraphs[f"B{case}"].text == f"B{case} {shown} Z", "expected the bullet as written"
    cells = {cell.text for table in document.tables for row in table.rows for cell in row.cells}
    assert shown in cells, "expected the table cell as written"


def test_the_word_title_is_text(word_document):
    document, title = word_document
    assert document.paragraphs[0].text == _word(title), document.paragraphs[0].text
    assert document.core_properties.title == _word(title), document.core_properties.title
