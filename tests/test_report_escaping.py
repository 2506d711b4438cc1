"""A hostile scenario title and description cannot become markup in report.md, report.html or report.docx, nor a
formula in results.xlsx, and still read as written."""
from __future__ import annotations

import copy
import datetime as dt
import json
import re
import warnings
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import docx
import openpyxl
import pandas as pd
import pytest
import yaml

from helpers import simple_raw
from sim.cli.main import main as cli_main
from sim.outputs import report
from sim.outputs.analysis import headline

pytestmark = pytest.mark.integration

TITLE = ("=HYPERLINK(\"http://x\") <script>alert(1)</script> \"double\" 'single' & A&amp;B *star* _under_ # hash "
         "`tick` [x](javascript:alert(1)) $x^2$ | pipe ~~strike~~ <img src=x onerror=alert(2)>")
DESCRIPTION = ("<b onmouseover=\"alert(3)\">bold?</b> & &lt;escaped&gt; **not bold** [link](javascript:alert(4)) "
               "![img](x.png) $$\\frac{1}{0}$$ | cell \\ backslash #5")

# Everything report.html may contain: no scripts, links, frames, forms or event handlers.
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "main", "footer", "ul",
                "li", "em", "strong", "code", "table", "thead", "tbody", "tr", "th", "td", "figure", "img",
                "figcaption"}
ALLOWED_ATTRIBUTES = {"lang", "charset", "name", "content", "class", "src", "alt"}


class _Page(HTMLParser):
    """Every tag and attribute of a page, and the text inside chosen elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: dict[str, list[str]] = {"h1": [], "title": [], "p": [], "td": [], "li": []}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        if tag in self.text:
            self.text[tag].append("")
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for tag in self._open:
            self.text[tag][-1] += data


def _unescape_markdown(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _live_specials(text: str, specials: str = "<>*_`[]#|$~") -> list[str]:
    """The Markdown special characters in `text` that no backslash escapes."""
    live, escaped = [], False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in specials:
            live.append(ch)
    return live


def _run_folder(folder: Path, scenarios: dict[str, tuple[str, str]]) -> Path:
    """A run folder with weekly.csv and scenario.yaml only: name -> (title, description); 3 replications, 6 weeks."""
    folder.mkdir(parents=True)
    start = dt.date(2021, 6, 7)
    rows = []
    for name in scenarios:
        for rep, counts in enumerate(([5, 4, 0, 0, 0, 0], [5, 5, 3, 0, 0, 0], [5, 5, 5, 5, 0, 0])):
            for week, n in enumerate(counts):
                rows.append({"scenario": name, "replication": rep, "week": week,
                             "week_start": (start + dt.timedelta(weeks=week)).isoformat(),
                             "waiting_total_start": 100, "waiting_total": 100 - week, "waiting_over_52w": n,
                             "waiting_over_78w": 0, "waiting_over_104w": 0, "clock_stops_admitted": 10 + rep,
                             "clock_stops_non_admitted": 20, "theatre_sessions_lost": 1,
                             "theatre_sessions_planned": 10})
    pd.DataFrame(rows).to_csv(folder / "weekly.csv", index=False)
    docs = [{"name": name, "title": title, "description": description, "start_date": start, "horizon_weeks": 6}
            for name, (title, description) in scenarios.items()]
    (folder / "scenario.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True),
                                          encoding="utf-8")
    return folder


def _check_inert(page_html: str) -> _Page:
    assert "<script" not in page_html.lower(), "expected no <script anywhere in report.html"
    page = _Page()
    page.feed(page_html)
    tags = {tag for tag, _ in page.tags}
    assert tags <= ALLOWED_TAGS, f"expected only the report's own elements, saw also {sorted(tags - ALLOWED_TAGS)}"
    for tag, attrs in page.tags:
        names = {name for name, _ in attrs}
        assert names <= ALLOWED_ATTRIBUTES, f"expected no other attributes on <{tag}>, saw {sorted(names)}"
        for name, value in attrs:
            if name == "src":
                assert (value or "").startswith("data:image/png;base64,"), f"expected only embedded PNGs, saw {value!r}"
    return page


def _check_no_formulas(path: Path) -> openpyxl.Workbook:
    wb = openpyxl.load_workbook(path)
    formulas = [f"{ws.title}!{cell.coordinate}" for ws in wb for row in ws.iter_rows() for cell in row
                if cell.data_type == "f"]
    assert not formulas, f"expected no formulas in results.xlsx, saw {formulas[:5]}"
    return wb


def _check_docx_inert(path: Path) -> docx.document.Document:
    """report.docx: no field but the footer's page number, no hyperlink, no link out of the file, no control
    character in any part, and user text only ever as the characters of w:t elements."""
    with zipfile.ZipFile(path) as z:
        parts = {name: z.read(name).decode("utf-8") for name in z.namelist() if name.endswith((".xml", ".rels"))}
    for name, xml in parts.items():
        assert not _UNHOLDABLE.search(xml.replace("\t", "").replace("\n", "").replace("\r", "")), \
            f"expected no control character in {name}"
        assert "<w:fldSimple" not in xml and "<w:hyperlink" not in xml, f"expected no field or hyperlink in {name}"
        assert 'TargetMode="External"' not in xml, f"expected nothing linked from outside the file in {name}"
        assert "<script" not in xml.lower(), f"expected user text escaped in {name}"
        instructions = re.findall(r"<w:instrText[^>]*>([^<]*)</w:instrText>", xml)
        assert all(i.strip() == "PAGE" for i in instructions), f"expected only the page number field: {instructions}"
    return docx.Document(str(path))


def test_hostile_title_and_description_stay_text(tmp_path):
    folder = _run_folder(tmp_path / "run", {"hostile": (TITLE, DESCRIPTION)})
    report.build_report(folder)
    heading = f"{TITLE}: elective recovery simulation"

    md = (folder / "report.md").read_text(encoding="utf-8")
    first = md.splitlines()[0]
    assert first.startswith("# "), f"expected report.md to open with its title heading, saw {first!r}"
    assert not _live_specials(first[2:]), f"expected every Markdown special in the title escaped, saw {first!r}"
    assert _unescape_markdown(first[2:]) == heading, f"expected the title to read as written, saw {first!r}"
    described = [line for line in md.splitlines() if "bold?" in line and not line.startswith("|")]
    assert len(described) == 1, f"expected one description paragraph, saw {described}"
    assert _live_specials(described[0]) == ["*", "*"], \
        f"expected only the emphasis around the title live in the description paragraph, saw {described[0]!r}"
    assert _unescape_markdown(described[0]) == f"*{TITLE}*: {DESCRIPTION}", \
        f"expected the description to read as written, saw {described[0]!r}"
    assert "\\&lt;" in described[0] and "A\\&amp;B" in md, "expected character references escaped in report.md"

    page = _check_inert((folder / "report.html").read_text(encoding="utf-8"))
    assert page.text["h1"] == [heading], f"expected the page heading to read as written, saw {page.text['h1']}"
    assert page.text["title"] == [heading], f"expected the page title to read as written, saw {page.text['title']}"
    assert f"{TITLE}: {DESCRIPTION}" in page.text["p"], "expected the description paragraph to read as written"
    assert TITLE in page.text["td"] and DESCRIPTION in page.text["td"], \
        "expected the title and description as written in the assumptions table"
    assert any(TITLE in li for li in page.text["li"]), "expected the title as written in the headlines"

    wb = _check_no_formulas(folder / "results.xlsx")
    values = {row[0].value: row[1] for row in wb["assumptions"].iter_rows(min_row=2)}
    assert values["Title"].value == TITLE and values["Title"].data_type == "s", \
        f"expected the title as text in the assumptions sheet, saw {values['Title'].value!r}"
    titles = [cell for cell in wb["comparison"][1] if cell.value == "title"]
    cell = wb["comparison"].cell(row=2, column=titles[0].column)
    assert cell.value == TITLE and cell.data_type == "s", f"expected the title as text, saw {cell.value!r}"
    summary = wb["Summary"].cell(row=2, column=1)
    assert summary.value == TITLE and summary.data_type == "s" and summary.quotePrefix, \
        f"expected the title as quoted text in the Summary sheet, saw {summary.value!r}"

    document = _check_docx_inert(folder / "report.docx")
    assert document.core_properties.title == heading, "expected the document's title property as written"
    assert document.paragraphs[0].text == heading, f"expected the title as written, saw {document.paragraphs[0].text!r}"
    assert document.tables[0].rows[1].cells[0].text == TITLE, "expected the title as written in the summary table"
    described = [p for p in document.paragraphs if "bold?" in p.text]
    assert len(described) == 1 and described[0].text == f"{TITLE}: {DESCRIPTION}", \
        f"expected the description to read as written, saw {[p.text for p in described]}"
    assert not any(r.bold for r in described[0].runs), "expected **not bold** to stay text, not bold"
    assert "".join(r.text for r in described[0].runs if r.italic) == TITLE, "expected only the title in italics"


# ---------------------------------------------------------------------------------------------------------------
# Hostile text in every place a report shows scenario text, and a whole compare with a hostile title
# ---------------------------------------------------------------------------------------------------------------

CONTROLS = "nul\x00 bell\x07 esc\x1b[31m del\x7f csi\x9b"
SITE_NAMES = {"site_a": '=HYPERLINK("http://x","y") | <img src=x onerror=alert(5)>',
              "site_b": "_under $x^2$ \\frac{ `tick` " + CONTROLS,
              "site_c": "@SUM(1+1) line\nbreak [x](javascript:alert(6))"}
HUB = '+cmd|" /C calc"!A0'
WAVE = "<script>alert(7)</script> -2+3"
COMMAND = 'run_sim.py compare "=HYPERLINK(""http://x"")" ' + CONTROLS
LABEL = "=1+2 $x$ " + CONTROLS
_UNHOLDABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _one_line(text: str) -> str:
    """How a paragraph, table cell or legend shows text: no control characters, a line break as a space."""
    return re.sub(r"\s*\n\s*", " ", _UNHOLDABLE.sub("", text))


FIRST_TITLE = TITLE + " " + CONTROLS
OTHER_TITLE = "=1+1 $\\frac{1}{$ not maths <i>x</i> " + "very long title " * 250


def _everywhere(folder: Path) -> Path:
    """A run folder of two scenarios whose titles, description, site names, hub, COVID-19 wave, manifest and run
    label all hold hostile text, with weekly_by_site.csv so the provider section, chart and sheet are built."""
    _run_folder(folder, {"hostile": (FIRST_TITLE,
                                     "first line\n- not a list\n# not a heading\n\n" + DESCRIPTION + CONTROLS),
                         "other": (OTHER_TITLE, "plain")})
    docs = list(yaml.safe_load_all((folder / "scenario.yaml").read_text(encoding="utf-8")))
    for doc in docs:
        doc["sites"] = {key: {"name": name, "trust_code": "=1+1", "elective_beds": 5,
                              "theatres": {"sessions_by_weekday": {"mon": 2}}} for key, name in SITE_NAMES.items()}
        doc["surgical_hubs"] = {"hubs": {HUB: {"host_site": "site_a", "elective_beds": 2}}}
        doc["covid"] = {"waves": [{"name": WAVE, "start": dt.date(2021, 6, 7), "end": dt.date(2021, 7, 5),
                                   "peak": dt.date(2021, 6, 21), "peak_inpatients": 10}]}
    (folder / "scenario.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True),
                                          encoding="utf-8")
    weekly = pd.read_csv(folder / "weekly.csv")
    by_site = pd.concat([weekly.assign(site=key, waiting_total=weekly["waiting_total"] // 3 + i,
                                       waiting_over_52w=weekly["waiting_over_52w"] // (i + 1))
                         for i, key in enumerate(SITE_NAMES)], ignore_index=True)
    by_site[["scenario", "replication", "week", "week_start", "site", "waiting_total", "waiting_over_52w"]].to_csv(
        folder / "weekly_by_site.csv", index=False)
    (folder / "manifest.json").write_text(json.dumps({
        "seed": 1, "replications": 3, "command": COMMAND, "scenario_file": "@evil.yaml",
        "overrides": ["title=$x^2$", "=cmd"], "note <b>" + CONTROLS: "-1+1 " + CONTROLS}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def everywhere(tmp_path_factory) -> Path:
    folder = _everywhere(tmp_path_factory.mktemp("everywhere") / "run")
    with warnings.catch_warnings():         # legends too long for the layout, glyphs the font lacks
        warnings.simplefilter("ignore", UserWarning)
        report.build_report(folder, label=LABEL)
    return folder


def test_hostile_titles_in_a_comparison_stay_text(everywhere):
    """Two scenarios: the titles also go into chart legends (where a pair of $ would start matplotlib's
    mathematics, and broken TeX would stop the chart), the difference table and column headers."""
    first, other = _one_line(FIRST_TITLE), _one_line(OTHER_TITLE).strip()
    page = _check_inert((everywhere / "report.html").read_text(encoding="utf-8"))
    assert page.text["h1"] == ["Elective recovery simulation: 2 scenarios compared"], page.text["h1"]
    assert any(f"Compared with {first}, {other}" in li for li in page.text["li"]), \
        "expected the comparison headline to name both scenarios as written"
    assert _one_line(OTHER_TITLE) in page.text["td"], "expected the second title as written in the difference table"
    assert (everywhere / "charts" / "waiting_over_52w.png").exists(), "expected the charts drawn with these titles"

    document = _check_docx_inert(everywhere / "report.docx")
    shown = [row.cells[0].text for row in document.tables[0].rows[1:]]
    assert shown == [first, _one_line(OTHER_TITLE)], f"expected both titles as written, saw {[s[:40] for s in shown]}"
    cells = {cell.text for table in document.tables for row in table.rows for cell in row.cells}
    for name in SITE_NAMES.values():
        assert _one_line(name) in cells, f"expected the provider {name[:30]!r} as written in the appendix"
    assert _one_line(COMMAND) in cells, "expected the command as written in the provenance table"

    wb = _check_no_formulas(everywhere / "results.xlsx")
    header = [cell.value for cell in wb["assumptions"][1]]
    assert header == ["Assumption", _UNHOLDABLE.sub("", FIRST_TITLE), OTHER_TITLE], \
        f"expected the titles as column headers, saw {[h[:40] for h in header]}"


def test_every_cell_of_every_sheet_is_text_as_written(everywhere):
    wb = _check_no_formulas(everywhere / "results.xlsx")
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                if not isinstance(cell.value, str):
                    continue
                where = f"{ws.title}!{cell.coordinate}"
                assert not _UNHOLDABLE.search(cell.value), f"expected no control character in {where}"
                assert cell.data_type == "s", f"expected {where} typed as text"
                if cell.value.startswith(("=", "+", "-", "@")):
                    assert cell.quotePrefix, f"expected Excel's quote prefix on {where}: {cell.value[:40]!r}"
    header = [c.value for c in wb["by_provider"][1]]
    providers = {row[header.index("provider")].value for row in wb["by_provider"].iter_rows(min_row=2)}
    assert providers == {_UNHOLDABLE.sub("", n) for n in SITE_NAMES.values()}, \
        f"expected each provider's name as written in the by_provider sheet, saw {providers}"
    provenance = {row[0].value: row[1].value for row in wb["provenance"].iter_rows(min_row=2)}
    assert provenance["Run folder"] == _UNHOLDABLE.sub("", LABEL) and provenance["Command"] == _UNHOLDABLE.sub(
        "", COMMAND), f"expected the run label and command as written, saw {provenance}"


def test_every_place_in_the_report_pages_shows_text_as_written(everywhere):
    page = _check_inert((everywhere / "report.html").read_text(encoding="utf-8"))
    cells = set(page.text["td"])
    for name in SITE_NAMES.values():
        assert _one_line(name) in cells, f"expected the provider {name[:30]!r} as written in the by-provider table"
    assert any(_one_line(LABEL) in p for p in page.text["p"]) or _one_line(LABEL) in cells, \
        "expected the run label as written"
    assert _one_line(COMMAND) in cells, "expected the command as written in the provenance table"
    assert any(WAVE in c for c in cells), "expected the COVID-19 wave's name as written in the assumptions"

    md = (everywhere / "report.md").read_text(encoding="utf-8")
    assert "\x00" not in md and "\x1b" not in md, "expected no control characters in report.md"
    assert not [line for line in md.splitlines() if line.startswith(("- not", "# not"))], \
        "expected the description's line breaks not to start a list or heading"
    section = md[md.index("## By provider"):]
    rows = [line for line in section[:section.index("\n## ", 1)].splitlines() if line.startswith("| ")]
    widths = {len(_live_specials(line, "|")) for line in rows}
    assert len(widths) == 1, f"expected every row of the provider table to have the same cells, saw {rows}"
    charts = sorted(p.name for p in (everywhere / "charts").glob("*.png"))
    assert "waiting_over_52w.png" in charts and "waiting_over_52w_by_provider.png" in charts, charts


def test_compare_with_a_hostile_title_exits_0_and_writes_every_file(tmp_path, capsys):
    """The issue's case: a title with $...$ passed validate and then crashed matplotlib at the end of a
    compare, leaving an empty folder. Two tiny scenarios, one replication of four weeks."""
    title = '=HYPERLINK("http://x","y") $x^2$ $\\frac{1}{$ <script>alert(1)</script> | `tick` nul\x00 esc\x1b[31m'
    first = simple_raw(horizon_weeks=4, referrals_per_week=20, sessions_per_day=2)
    first.update(name="hostile", title=title, description="$$ [x](javascript:alert(2)) \\ ^ _")
    first["sites"]["site_a"]["name"] = "_site $x$ =1+1"
    second = copy.deepcopy(first)
    second.update(name="other", title="$\\alpha_1$ other")
    files = []
    for raw in (first, second):
        files.append(tmp_path / f"{raw['name']}.yaml")
        files[-1].write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        code = cli_main(["compare", *map(str, files), "--replications", "1", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, f"expected compare to finish, saw exit {code}: {captured.err[-500:]}"
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    expected = {"weekly.csv", "replications.csv", "summary.csv", "comparison.csv", "manifest.json", "report.md",
                "report.html", "results.xlsx", "report.docx", "weekly_by_site.csv", "scenarios/hostile.yaml",
                "charts/waiting_over_52w.png", "charts/waiting_over_52w.svg", "charts/waiting_over_52w_by_provider.png"}
    assert expected <= written, f"expected every file written, missing {sorted(expected - written)}"
    _check_no_formulas(out / "results.xlsx")
    _check_docx_inert(out / "report.docx")
    page = _check_inert((out / "report.html").read_text(encoding="utf-8"))
    shown = _one_line(title)
    assert any(f"Compared with {shown}, $\\alpha_1$ other" in li for li in page.text["li"]), page.text["li"]
    assert f"{shown} — 1 replication" in captured.out, "expected the headline to print the title as written"
    assert not _UNHOLDABLE.search(captured.out), "expected no control character printed to the terminal"


def test_the_terminal_headline_carries_no_escape_sequence():
    summary = pd.DataFrame([{"scenario": "s", "metric": m, "mean": 1.0, "p05": 1.0, "p50": 1.0, "p95": 1.0}
                            for m in ("weeks_to_clear_52w", "weeks_to_clear_78w", "weeks_to_clear_104w",
                                      "share_of_replications_cleared_52w", "share_of_replications_cleared_78w",
                                      "share_of_replications_cleared_104w", "peak_waiting_total")])
    lines = headline(summary, "Plan\x1b]0;owned\x07\x1b[2J\nsecond line", "s", dt.date(2021, 6, 7), 1, 4)
    assert lines[0].startswith("Plan]0;owned[2J second line — 1 replication"), f"saw {lines[0]!r}"
    assert not any(_UNHOLDABLE.search(line) for line in lines), "expected no control character in any line"
