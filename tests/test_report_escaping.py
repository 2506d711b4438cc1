"""A hostile scenario title and description cannot become markup in report.md or report.html, nor a formula in
results.xlsx, and still read as written."""
from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from sim.outputs import report

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


@pytest.mark.filterwarnings("ignore:constrained_layout not applied")      # legends as long as these titles
def test_hostile_titles_in_a_comparison_stay_text(tmp_path):
    """Two scenarios: the titles also go into chart legends (where a pair of $ would start matplotlib's
    mathematics, and broken TeX would stop the chart), the difference table and column headers."""
    other = "=1+1 $\\frac{1}{$ not maths <i>x</i>"
    folder = _run_folder(tmp_path / "run", {"hostile": (TITLE, DESCRIPTION), "other": (other, "plain")})
    report.build_report(folder)

    page = _check_inert((folder / "report.html").read_text(encoding="utf-8"))
    assert page.text["h1"] == ["Elective recovery simulation: 2 scenarios compared"], page.text["h1"]
    assert any(f"Compared with {TITLE}, {other}" in li for li in page.text["li"]), \
        "expected the comparison headline to name both scenarios as written"
    assert other in page.text["td"], "expected the second title as written in the difference table"
    assert (folder / "charts" / "waiting_over_52w.png").exists(), "expected the charts drawn with these titles"

    wb = _check_no_formulas(folder / "results.xlsx")
    header = [cell.value for cell in wb["assumptions"][1]]
    assert header == ["Assumption", TITLE, other], f"expected the titles as column headers, saw {header}"
