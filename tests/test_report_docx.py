"""The summary table every report opens with, and report.docx: the same numbers in every output, read back from
each file and checked against the run's own CSV files; the Word paper's shape; LibreOffice can open it."""
from __future__ import annotations

import datetime as dt
import math
import re
import shutil
import subprocess
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import docx
import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml

from helpers import BASELINE
from sim.cli.main import main as cli_main

pytestmark = pytest.mark.integration

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
FAST = ["--replications", "3", "--set", "horizon_weeks=60", "--set", "referrals.referrals_per_week=3000"]
RUN_FILES = ("manifest.json", "weekly.csv", "replications.csv", "summary.csv", "weekly_by_site.csv",
             "finance_by_year.csv", "finance_monthly.csv", "comparison.csv")     # and scenarios/ (a compare)


def _date(d: dt.date) -> str:
    """The test's own British date, written independently of sim.outputs.report.format."""
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def _millions(x: float) -> str:
    text = f"£{abs(x) / 1e6:,.1f}m"
    return text if x >= 0 or text == "£0.0m" else "−" + text


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Path:
    """A real compare of two scenarios (the plan, and the plan with fewer theatre sessions at one trust)."""
    base = tmp_path_factory.mktemp("docx")
    fewer = base / "fewer.yaml"
    fewer.write_text(yaml.safe_dump({
        "extends": str(BASELINE), "name": "fewer_sessions", "title": "Fewer sessions at LNWH",
        "sites": {"lnwh": {"theatres": {"sessions_by_weekday": {"mon": 20, "tue": 20}}}}}), encoding="utf-8")
    out = base / "run"
    code = cli_main(["compare", str(BASELINE), str(fewer), *FAST, "--quiet", "--out", str(out)])
    assert code == 0, "expected the compare to finish"
    return out


class _Tables(HTMLParser):
    """The cells of report.html's tables, and the order of the main element's first elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[tuple[str, list[list[str]]]] = []
        self.first_in_main: list[str] = []
        self._in_main = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "main":
            self._in_main = True
        elif self._in_main and len(self.first_in_main) < 3 and tag in ("h2", "table", "ul", "p", "figure"):
            self.first_in_main.append(tag + ("." + (dict(attrs).get("class") or "") if tag == "table" else ""))
        if tag == "table":
            self.tables.append((dict(attrs).get("class") or "", []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_summary(folder: Path) -> tuple[list[list[str]], list[str]]:
    page = _Tables()
    page.feed((folder / "report.html").read_text(encoding="utf-8"))
    summary = [rows for cls, rows in page.tables if cls == "summary"]
    assert len(summary) == 1, f"expected one summary table in report.html, saw {len(summary)}"
    return summary[0], page.first_in_main


def _docx_summary(folder: Path) -> list[list[str]]:
    document = docx.Document(str(folder / "report.docx"))
    return [[cell.text for cell in row.cells] for row in document.tables[0].rows]


def _xlsx_summary(folder: Path) -> list[list[str]]:
    wb = openpyxl.load_workbook(folder / "results.xlsx", read_only=True)
    assert wb.sheetnames[0] == "Summary", f"expected the Summary sheet first, saw {wb.sheetnames}"
    return [["" if v is None else str(v) for v in row] for row in wb["Summary"].iter_rows(values_only=True)]


def _md_summary(folder: Path) -> list[list[str]]:
    lines = (folder / "report.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("## Summary") + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if line.startswith("|---"):
            continue
        cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
        rows.append([re.sub(r"\\(.)", r"\1", c.strip()) for c in cells])
    return rows


def test_the_summary_table_reads_the_same_in_every_output(compared):
    html_rows, _ = _html_summary(compared)
    docx_rows = _docx_summary(compared)
    xlsx_rows = _xlsx_summary(compared)
    md_rows = _md_summary(compared)
    assert len(html_rows) == 3, f"expected a header and a row per scenario, saw {len(html_rows)} rows"
    assert docx_rows == html_rows, f"report.docx's summary differs from report.html's:\n{docx_rows}\n{html_rows}"
    assert xlsx_rows == html_rows, f"results.xlsx's Summary sheet differs from report.html's:\n{xlsx_rows}"
    assert md_rows == html_rows, f"report.md's summary differs from report.html's:\n{md_rows}"


def test_the_summary_table_agrees_with_the_run_files(compared):
    """Every number of the table, recomputed here from summary.csv, weekly.csv and finance_by_year.csv."""
    rows = _docx_summary(compared)
    header, body = rows[0], rows[1:]
    summary = pd.read_csv(compared / "summary.csv")
    weekly = pd.read_csv(compared / "weekly.csv")
    finance = pd.read_csv(compared / "finance_by_year.csv")
    scenarios = {d["name"]: d for d in (yaml.safe_load((compared / "scenarios" / f).read_text())
                                        for f in ("nwl_june_2021_plan.yaml", "fewer_sessions.yaml"))}
    names = list(dict.fromkeys(summary["scenario"]))
    assert [r[0] for r in body] == [scenarios[n]["title"] for n in names], "expected a row per scenario, in order"

    def stat(name: str, metric: str, column: str) -> float:
        hit = summary[(summary["scenario"] == name) & (summary["metric"] == metric)]
        return float(hit[column].iloc[0])

    for name, row in zip(names, body, strict=True):
        cells = dict(zip(header, row, strict=True))
        start = dt.date.fromisoformat(str(scenarios[name]["start_date"]))
        end = start + dt.timedelta(days=7 * int(scenarios[name]["horizon_weeks"]) - 1)
        for t in (52, 78, 104):
            cell = cells[f"Nobody over {t} weeks from"]
            p50 = stat(name, f"weeks_to_clear_{t}w", "p50")
            if math.isnan(p50):
                assert cell.startswith(f"not by {_date(end)}"), f"{name} {t}w: expected not cleared, saw {cell!r}"
            elif p50 == 0:
                assert cell == "none at any week's end", f"{name} {t}w: saw {cell!r}"
            else:
                median = start + dt.timedelta(days=7 * (math.floor(p50 + 0.5) - 1))
                assert cell.startswith(_date(median)), f"{name} {t}w: expected {_date(median)} first, saw {cell!r}"
                p95 = stat(name, f"weeks_to_clear_{t}w", "p95")
                if not math.isnan(p95):
                    high = start + dt.timedelta(days=7 * (math.ceil(p95) - 1))
                    assert cell.endswith(f"{_date(high)})"), f"{name} {t}w: expected ...{_date(high)}), saw {cell!r}"
        target = dt.date.fromisoformat(str(scenarios[name]["targets"]["no_52w_waiters_by"]))
        chance = stat(name, f"probability_no_52w_waiters_by_{target.isoformat()}", "mean")
        assert cells[f"Chance of no 52-week waits by {_date(target)}"] == f"{round(chance * 100)}%"
        week = ((target - start).days + 1) // 7 - 1
        at = weekly[(weekly["scenario"] == name) & (weekly["week"] == week)]["waiting_total"]
        assert cells[f"List on {_date(target)}"] == f"{np.median(at):,.0f}"
        assert cells[f"List at the end, {_date(end)}"] == f"{stat(name, 'waiting_total_end', 'p50'):,.0f}"
        years = [c for c in finance.columns if re.fullmatch(r"\d{4}/\d{2}", c)]
        assert years, "expected financial years in finance_by_year.csv"
        net = finance[(finance["scenario"] == name) & (finance["metric"] == "net_position")
                      & (finance["statistic"] == "p50")].iloc[0]
        for y in years:
            shown = cells[f"Net position {y}"]
            assert shown == _millions(float(net[y])), f"{name} {y}: expected {_millions(float(net[y]))}, saw {shown}"
    reps = pd.read_csv(compared / "replications.csv")
    ref, other = (reps[reps["scenario"] == n].set_index("replication") for n in names)
    difference = float(np.median(other["waiting_total_end"] - ref["waiting_total_end"]))
    shown = dict(zip(header, body[1], strict=True))["List at the end, against the reference"]
    assert shown.replace("−", "-").replace("+", "") == f"{difference:,.0f}", f"saw {shown!r}, expected {difference}"
    assert dict(zip(header, body[0], strict=True))["List at the end, against the reference"] == "reference"


def test_dates_and_money_are_written_one_way_everywhere(compared):
    long_month = re.compile(r"\b\d{1,2} (January|February|March|April|June|July|August|September|October|"
                            r"November|December) \d{4}\b")
    texts = {"report.md": (compared / "report.md").read_text(encoding="utf-8"),
             "report.html": (compared / "report.html").read_text(encoding="utf-8"),
             "report.docx": "\n".join(p.text for p in docx.Document(str(compared / "report.docx")).paragraphs)}
    for name, text in texts.items():
        assert not long_month.search(text), f"expected short months in {name}, saw {long_month.search(text)[0]!r}"
        assert "£-" not in text, f"expected −£ for negative money in {name}"
    money = [c for row in _docx_summary(compared)[1:] for c in row if "£" in c]
    assert money and all(re.fullmatch(r"−?£\d[\d,]*\.\dm", c) for c in money), f"expected £m to one decimal: {money}"


def test_html_opens_with_the_summary_table_then_at_most_three_headlines(compared):
    _, first = _html_summary(compared)
    assert first[:2] == ["h2", "table.summary"], f"expected report.html's body to open with the summary, saw {first}"
    md = (compared / "report.md").read_text(encoding="utf-8")
    after = md[md.index("## Summary"):].split("\n\n")
    bullets = next(block for block in after if block.startswith("- ")).splitlines()
    assert 1 <= len(bullets) <= 3, f"expected one to three headline sentences, saw {bullets}"
    assert md.index("## Summary") < md.index("## Findings in detail"), "expected the detailed sentences below"


def test_the_word_paper_has_the_board_paper_shape(compared):
    document = docx.Document(str(compared / "report.docx"))
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading 1")]
    expected = ["Purpose", "Summary", "Recommendation", "The scenarios", "Key figures", "Key assumptions",
                "Uncertainty", "Method", "Appendix: tables"]
    assert [h for h in headings if h in expected] == expected, f"expected the board paper's sections, saw {headings}"
    assert len(document.inline_shapes) == 2, f"expected the 52-week and list charts, saw {len(document.inline_shapes)}"
    assert document.styles["Normal"].font.name == "Arial", "expected Arial, set by name"
    title = next(p for p in document.paragraphs if p.style.name == "Title")
    assert str(title.style.font.color.rgb) == "005EB8", "expected the title in NHS Blue"
    key = next(t for t in document.tables if t.rows[0].cells[-1].text.startswith("Source ([S]"))
    sources = [row.cells[-1].text for row in key.rows[1:]]
    assert any(s.startswith("[S]") for s in sources), f"expected a sourced assumption among {sources}"
    assert document.sections[0].page_width > document.sections[0].page_height, "expected page 1 landscape"
    with zipfile.ZipFile(compared / "report.docx") as z:
        fonts = [n for n in z.namelist() if n.startswith("word/fonts/")]
    assert not fonts, f"expected no embedded font files, saw {fonts}"


def test_report_format_docx_writes_the_charts_and_the_word_paper_only(compared, tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in RUN_FILES:
        shutil.copy2(compared / name, folder / name)
    shutil.copytree(compared / "scenarios", folder / "scenarios")
    assert cli_main(["report", str(folder), "--format", "docx"]) == 0, capsys.readouterr().err
    assert (folder / "report.docx").is_file() and (folder / "charts" / "waiting_over_52w.png").is_file()
    absent = [n for n in ("report.html", "report.md", "results.xlsx") if (folder / n).exists()]
    assert not absent, f"expected only the Word paper, saw also {absent}"
    assert f"Report: {folder / 'report.docx'}" in capsys.readouterr().out


def test_libreoffice_converts_the_word_paper_to_pdf(compared, tmp_path):
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) is not installed: apt-get install libreoffice-writer-nogui")
    profile = tmp_path / "profile"          # its own profile: no clash with another soffice running
    proc = subprocess.run([soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
                           "--outdir", str(tmp_path), str(compared / "report.docx")],
                          capture_output=True, text=True, timeout=180)
    pdf = tmp_path / "report.pdf"
    assert proc.returncode == 0 and pdf.is_file(), f"expected a PDF: {proc.stdout} {proc.stderr}"
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 50_000, "expected a PDF with the charts"
    if shutil.which("pdftotext"):
        page1 = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True,
                               text=True, timeout=60).stdout
        assert "Summary" in page1 and "Fewer sessions at LNWH" in page1, "expected the summary table on page 1"
