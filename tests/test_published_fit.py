"""The shipped calibrated scenario against NHS England's published months: the bar every change is judged by.

`as_happened_2021_22.yaml` is North West London's 2021/22 as the trusts delivered it, fitted to the published RTT
series (README, *Calibrating to a monthly series*). A change to the model or its inputs that moves it away from
the published figures fails here, with the series and its error named, before anyone quotes the board paper's
numbers beside NHS England's. The limits are the calibration targets (README: at most 3% mean absolute error on
the list in the fitted months, 5% on clock starts and completions) and 5% on the derived admitted list.

The count over 52 weeks is a known gap (README, *Limits*): the model's rises about x1.7 from July 2021 to March
2022 where England's rose x1.06. Its test is an expected failure, strict, so that the change which closes the gap
is told to turn it into a plain test.
"""
from __future__ import annotations

import pytest

from helpers import ROOT, run_cli
from sim.outputs.report import published
from sim.outputs.run_reader import load_run

pytestmark = pytest.mark.verification

AS_HAPPENED = ROOT / "scenarios" / "as_happened_2021_22.yaml"
# mean absolute percentage error over July 2021 to March 2022, at most
LIMITS = {"clock_starts": 5.0, "completed_pathways": 5.0, "waiting_list": 3.0, "waiting_admitted": 5.0}


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    """Two replications of the calibrated scenario to 3 April 2022, set beside the published months."""
    out = tmp_path_factory.mktemp("as_happened") / "run"
    proc = run_cli("run", str(AS_HAPPENED), "--replications", "2", "--set", "horizon_weeks=43", "--no-report",
                   "--quiet", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    [fit] = published.published_fits(load_run(out))
    return fit


def test_the_calibrated_scenario_matches_the_published_months(fit):
    assert (str(fit.first_month), str(fit.last_month)) == ("2021-07", "2022-03")
    errors = dict(zip(fit.errors["series"], fit.errors["mape_percent"], strict=True))
    assert set(errors) == set(LIMITS)
    over = {s: round(errors[s], 2) for s, limit in LIMITS.items() if not errors[s] <= limit}
    assert not over, f"mean absolute % error over the published months above the limit {LIMITS}: {over}"


@pytest.mark.xfail(strict=True, reason="known gap (README Limits): the model's 52+ count rises about x1.7 from July "
                                       "2021 to March 2022, England's x1.06")
def test_the_count_over_52_weeks_moves_as_englands_did(fit):
    assert abs(fit.model_change() - fit.england_change()) < 0.25
