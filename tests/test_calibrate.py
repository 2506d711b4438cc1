"""`calibrate`: the fit recovers inputs the model itself generated a series from, never reads months after the
window, writes a scenario that reproduces its own fit, and refuses bad input with nothing written."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import run_cli, scaled_baseline_raw
from sim.experiment.replications import run_replications
from sim.outputs.calibration_fit import (
    FitTargets,
    admitted_start_bands,
    decisions_needed_ratio,
    fit_targets,
    scaled_start_bands,
)
from sim.outputs.monthly_fit import simulated_monthly, stock_at
from sim.scenario.observed import ObservedSeries, load_observed
from sim.scenario.validate import validate
from sim.scenario.yaml_files import apply_overrides

START = dt.date(2021, 6, 7)
TRUE = {"referrals.referrals_per_week": 1700.0, "delivery.clinic_slots_scale": 0.85,
        "delivery.theatre_productivity_scale": 0.9, "removals.rate_multiplier": 2.0,
        "referrals.admitted_share_multiplier": 1.15}


@pytest.mark.unit
def test_start_bands_under_52_weeks_are_scaled_to_the_opening_list_and_52_plus_kept():
    bands = [{"from_weeks": 0, "to_weeks": 18, "count": 1000, "admitted_share": 0.1},
             {"from_weeks": 18, "to_weeks": 52, "count": 333, "admitted_share": 0.2},
             {"from_weeks": 52, "to_weeks": 104, "count": 45, "admitted_share": 0.5}]
    scaled, scale = scaled_start_bands(bands, 1500.4)
    assert sum(b["count"] for b in scaled) == 1500
    assert scaled[2]["count"] == 45, "the seed's 52+ count stays"
    assert scale == pytest.approx(1455 / 1333)
    assert scaled[0]["count"] / scaled[1]["count"] == pytest.approx(1000 / 333, rel=0.01)
    assert bands[0]["count"] == 1000, "the input is not changed"


@pytest.mark.unit
def test_decisions_needed_close_the_gaps_in_admitted_completions_and_in_the_admitted_lists_change():
    months = pd.period_range("2021-06", "2021-08", freq="M")
    june, july, aug = months
    targets = FitTargets(months=tuple(months), covered_share=dict.fromkeys(months, 1.0), clock_starts={},
                         completed_admitted={june: 90.0, july: 100.0, aug: 110.0}, completed_non_admitted={},
                         waiting_list={}, other_removals_total=0.0, removal_months=(), admitted_share_source="",
                         opening_list=None, waiting_admitted={june: 1000.0, july: 1020.0, aug: 1050.0})
    simulated = pd.DataFrame({"decisions_to_treat": [80.0, 190.0, 200.0], "completed_admitted": [85.0, 95.0, 105.0],
                              "waiting_admitted": [990.0, 1000.0, 990.0]}, index=months)
    # July and August (after the first published month-end): simulated decisions 390; published completions 210
    # against 200 simulated (+10); the list's change 50 published against 0 simulated (+50): 450 needed
    assert decisions_needed_ratio(simulated, targets) == pytest.approx(450 / 390)
    # nothing published, or only one month-end: nothing to fit
    assert decisions_needed_ratio(simulated, replace(targets, waiting_admitted={june: 1000.0})) == 1.0


@pytest.mark.unit
def test_start_bands_admitted_shares_are_scaled_to_the_published_admitted_list_and_capped_at_one():
    bands = [{"from_weeks": 0, "to_weeks": 18, "count": 1000, "admitted_share": 0.1},
             {"from_weeks": 18, "to_weeks": 52, "count": 100, "admitted_share": 0.6}]
    scaled, scale = admitted_start_bands(bands, 320.0)          # expected before: 100 + 60 = 160
    assert scale == pytest.approx(2.0)
    assert [b["admitted_share"] for b in scaled] == [0.2, 1.0], "0.6 x 2 is capped at 1"
    assert [b["count"] for b in scaled] == [1000, 100] and bands[0]["admitted_share"] == 0.1


@pytest.mark.unit
def test_targets_take_a_partly_simulated_month_pro_rata_and_split_completions_by_the_given_share():
    table = pd.DataFrame({"clock_starts": [300.0, 310.0, 620.0], "completed_pathways": [200.0, 300.0, 500.0],
                          "waiting_list": [1000.0, 1100.0, 1200.0]},
                         index=pd.period_range("2021-05", "2021-07", freq="M"))
    observed = ObservedSeries(Path("x.csv"), table)
    share = pd.Series([0.2, 0.2, 0.25], index=table.index)
    targets = fit_targets(observed, pd.Period("2021-06", freq="M"), START, share, "england")
    assert targets.months == (pd.Period("2021-06", freq="M"), pd.Period("2021-07", freq="M"))
    june, july = targets.months
    assert targets.covered_share[june] == pytest.approx(24 / 30)      # 7 to 30 June
    assert targets.clock_starts[june] == pytest.approx(310 * 24 / 30)
    assert targets.completed_admitted[july] == pytest.approx(125)
    assert targets.completed_non_admitted[july] == pytest.approx(375)
    assert targets.removal_months == (july,), "June is not whole, so only July's removals are fitted"
    assert targets.other_removals_total == pytest.approx(620 - 500 - 100)
    assert targets.opening_list == pytest.approx(1000 + 6 / 30 * 100), "31 May + 6/30 of June's change"
    with pytest.raises(ValueError, match="no completed_admitted"):
        fit_targets(observed, pd.Period("2021-06", freq="M"), START, None, "")


def _generated_series(tmp_path: Path) -> Path:
    """The scaled baseline run with TRUE inputs (seed 99, three replications): its months as a tidy series."""
    raw = scaled_baseline_raw(0.1, horizon_weeks=27)     # on into November: a month after the window
    raw["delivery"] = {}
    scenario = validate(apply_overrides(raw, [f"{k}={v}" for k, v in TRUE.items()]), "generating")
    weekly = run_replications(scenario, replications=3, seed=99).weekly
    monthly = simulated_monthly(weekly, START).groupby("month").mean()
    rows = ["month,clock_starts,completed_pathways,waiting_list,completed_admitted,waiting_admitted"]
    # June is not whole in the run: its list (30 June) is, and is all the fit reads of June (July's removals)
    def june_30(column: str, opening: str | None) -> float:
        return weekly.groupby("replication").apply(
            lambda t: stock_at(t[column].to_numpy(float), t[opening].iloc[0] if opening else None, START,
                               dt.date(2021, 6, 30)), include_groups=False).mean()
    rows.append(f"2021-06,1,1,{june_30('waiting_total', 'waiting_total_start'):.0f},0,"
                f"{june_30('waiting_admitted', None):.0f}")
    for month, r in monthly.iterrows():
        rows.append(f"{month},{r.clock_starts:.0f},{r.completed_pathways:.0f},{r.waiting_list:.0f},"
                    f"{r.completed_admitted:.0f},{r.waiting_admitted:.0f}")
    path = tmp_path / "generated.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scaled.yaml"
    path.write_text(yaml.safe_dump(scaled_baseline_raw(0.1, horizon_weeks=22), sort_keys=False), encoding="utf-8")
    return path


def _calibrate(scenario: Path, observed: Path, out: Path, *extra: str, report: str = "report"):
    return run_cli("calibrate", str(scenario), "--observed", str(observed), "--window", "2021-07:2021-10",
                   "--out", str(out), "--replications", "2", "--report-dir", str(out.parent / f"{out.stem}-{report}"),
                   "--quiet", *extra)


def _fitted(path: Path) -> dict[str, float]:
    """The fitted inputs as averages over the window: each level times the mean of its months' multipliers (the
    series was generated without a monthly profile, so the multipliers only soak up month-to-month noise)."""
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    delivery = cfg["delivery"]

    def mean(by_month: dict) -> float:
        return sum(by_month.values()) / len(by_month)
    return {"referrals.referrals_per_week": cfg["referrals"]["referrals_per_week"]
            * mean(cfg["referrals"]["monthly_multipliers"]),
            "delivery.clinic_slots_scale": delivery["clinic_slots_scale"]
            * mean(delivery["clinic_monthly_multipliers"]),
            "delivery.theatre_productivity_scale": delivery["theatre_productivity_scale"]
            * mean(delivery["theatre_monthly_multipliers"]),
            "removals.rate_multiplier": cfg["removals"]["rate_multiplier"],
            "referrals.admitted_share_multiplier": cfg["referrals"].get("admitted_share_multiplier", 1.0)}


@pytest.mark.verification
@pytest.mark.slow
def test_calibration_recovers_the_inputs_a_series_was_generated_with_and_ignores_later_months(tmp_path):
    """From the plan's inputs (demand 1,556 a week, full delivery, removal rates x1, the specialties' admitted
    shares) and another seed, the fit finds the generating inputs within 3%, decisions to treat from the admitted
    list; the written scenario reproduces its own fit; the same command gives the same file, even with garbage
    after the window."""
    series, scenario = _generated_series(tmp_path), _scenario_file(tmp_path)
    out = tmp_path / "fitted.yaml"
    proc = _calibrate(scenario, series, out)
    assert proc.returncode == 0, proc.stderr
    fitted = _fitted(out)
    for key, true in TRUE.items():
        assert fitted[key] == pytest.approx(true, rel=0.03), f"{key}: fitted {fitted[key]}, generated with {true}"

    # the written scenario reproduces the fit it reports
    errors = pd.read_csv(tmp_path / "fitted-report" / "calibration_errors.csv").set_index("series")
    bt = tmp_path / "bt"
    proc = run_cli("backtest", str(out), "--monthly", str(series), "--window", "2021-07:2021-10", "--replications",
                   "2", "--out", str(bt), "--quiet")
    assert proc.returncode == 0, proc.stderr
    again = pd.read_csv(bt / "backtest_errors.csv").set_index("series")
    assert again["mape_percent"].to_dict() == pytest.approx(errors["mape_percent"].to_dict(), abs=1e-9)
    assert errors.loc["waiting_list", "mape_percent"] < 3.0

    # same command, same file; and months after the window are never read: with the series' last month (after the
    # window) replaced by nonsense in the same file, the same command writes the same bytes (one fit checks both)
    first = out.read_bytes()
    proc = _calibrate(scenario, series, out, "--force")
    assert proc.returncode == 2 and "fitted-report" in proc.stderr, "a fit report folder in use is refused first"
    months = series.read_text(encoding="utf-8").splitlines()
    series.write_text("\n".join(months[:-1] + [months[-1].split(",")[0] + ",1,1,999999,0,0"]) + "\n", encoding="utf-8")
    assert load_observed(series).months[-1] > pd.Period("2021-10", freq="M"), "the series runs past the window"
    assert _calibrate(scenario, series, out, "--force", report="report2").returncode == 0
    assert out.read_bytes() == first


@pytest.mark.integration
@pytest.mark.parametrize("content, expected", [
    ("month,clock_starts,completed_pathways,waiting_list\n2021-07,1,x,1\n", "row 2, column completed_pathways"),
    ("month,clock_starts,completed_pathways,waiting_list\n2021-07,1,1,1\n2021-08,1,1,1\n", "no completed_admitted"),
])
def test_a_bad_observed_series_exits_2_and_writes_nothing(tmp_path, content, expected):
    observed = tmp_path / "observed.csv"
    observed.write_text(content, encoding="utf-8")
    out = tmp_path / "out.yaml"
    proc = run_cli("calibrate", str(_scenario_file(tmp_path)), "--observed", str(observed), "--window",
                   "2021-07:2021-08", "--out", str(out), "--results-root", str(tmp_path / "results"))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and expected in proc.stderr, proc.stderr
    assert not out.exists() and not (tmp_path / "results").exists(), "nothing may be written"


@pytest.mark.integration
def test_an_existing_out_file_is_not_replaced_without_force(tmp_path):
    out = tmp_path / "out.yaml"
    out.write_text("keep me\n", encoding="utf-8")
    proc = run_cli("calibrate", str(_scenario_file(tmp_path)), "--observed", "data/observed/nwl_monthly.csv",
                   "--window", "2021-07:2021-08", "--out", str(out))
    assert proc.returncode == 2 and "--force" in proc.stderr, proc.stderr
    assert out.read_text(encoding="utf-8") == "keep me\n"
