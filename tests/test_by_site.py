"""The list and its flows by site (weekly_by_site.csv): each trust board reads its own line, so the lines must add
up to the ICS-wide weekly.csv exactly, and the attribution rule (referred site; treated-here by treating site) must
be the one the docstring of WeeklyMonitor._record_sites states."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import scaled_baseline
from sim.model.patients import WAITING_ADMITTED, WAITING_OUTPATIENT, PatientTable
from sim.model.replication import run_single
from sim.model.waiting_list import RttLedger

# columns of weekly_by_site.csv that sum over sites to the weekly.csv column of the same name
SUMMED_COLUMNS = ["waiting_total_start", "waiting_total", "waiting_admitted", "waiting_over_18w", "waiting_over_52w",
                  "waiting_over_78w", "waiting_over_104w", "clock_starts", "clock_stops_admitted",
                  "clock_stops_non_admitted", "removals_other"]


def _sites_summed(by_site, weekly, column: str, to: str) -> None:
    summed = by_site.groupby(["replication", "week"])[column].sum()
    ics = weekly.set_index(["replication", "week"])[to]
    assert summed.index.equals(ics.index), "weekly_by_site.csv and weekly.csv cover different weeks"
    bad = summed[summed != ics]
    assert bad.empty, (f"{column} summed over sites differs from weekly.csv {to} in (replication, week) "
                       f"{list(bad.index[:5])}")


@pytest.mark.verification
def test_every_site_column_sums_to_the_ics_column_every_week():
    # The scaled baseline pools the admitted list (`ics`), has surgical hubs, removals and a validation round.
    sc = scaled_baseline(0.05, horizon_weeks=30)
    assert sc.pooling == "ics" and sc.surgical_hubs is not None
    for rep in range(2):
        result = run_single(sc, rep)
        by_site, weekly = result.by_site, result.weekly
        assert sorted(by_site["site"].unique()) == sorted(sc.site_names)
        assert len(by_site) == len(sc.site_names) * sc.horizon_weeks
        for column in SUMMED_COLUMNS:
            _sites_summed(by_site, weekly, column, column)
        _sites_summed(by_site, weekly, "clock_stops_admitted_treated_here", "clock_stops_admitted")
        # each site's own stock-and-flow identity, and each week starts where the last ended
        expected = (by_site["waiting_total_start"] + by_site["clock_starts"] - by_site["clock_stops_admitted"]
                    - by_site["clock_stops_non_admitted"] - by_site["removals_other"])
        assert (expected == by_site["waiting_total"]).all()
        for _, g in by_site.groupby("site"):
            assert (g["waiting_total_start"].to_numpy()[1:] == g["waiting_total"].to_numpy()[:-1]).all()
        # pooled: some trust treats another trust's patients, so the two attributions really differ
        moved = (by_site["clock_stops_admitted_treated_here"] != by_site["clock_stops_admitted"]).sum()
        assert moved > 0 and weekly["treated_at_other_site"].sum() > 0


@pytest.mark.behaviour
def test_under_site_pooling_every_site_treats_exactly_its_own_patients():
    sc = scaled_baseline(0.05, horizon_weeks=20, overrides=["pooling=site"])
    result = run_single(sc, 0)
    by_site = result.by_site
    assert by_site["clock_stops_admitted"].sum() > 0
    assert (by_site["clock_stops_admitted_treated_here"] == by_site["clock_stops_admitted"]).all()
    assert result.weekly["treated_at_other_site"].sum() == 0


@pytest.mark.unit
def test_the_ledger_counts_a_stop_against_the_referred_site_and_the_treating_site():
    """Three pathways referred to site 1, one to site 0; site 0 treats two of site 1's on the admitted list."""
    patients = PatientTable()
    n = 4
    zeros = np.zeros(n, dtype=np.uint8)
    referred = np.array([1, 1, 1, 0], dtype=np.uint8)
    status = np.array([WAITING_ADMITTED, WAITING_ADMITTED, WAITING_OUTPATIENT, WAITING_OUTPATIENT], dtype=np.uint8)
    clock_start = np.array([-400, -10, -3, -2], dtype=np.int32)
    patients.append(status, clock_start_day=clock_start, specialty=zeros, priority=zeros, borough=zeros,
                    referred_site=referred, needs_operation=zeros, inpatient=zeros, virtual=zeros,
                    dna_remaining=zeros, cancellations_remaining=zeros, hub_eligible=zeros,
                    theatre_minutes=np.zeros(n, dtype=np.float32), los_days=np.zeros(n, dtype=np.float32))
    ledger = RttLedger(patients, history_days=400, horizon_days=7, n_specialties=1, n_sites=3)
    ledger.start_clocks(clock_start, zeros, status, referred)
    ledger.count_clock_starts(referred[2:])
    by_site = ledger.waiting_by_site_and_start_day()
    assert by_site.sum(axis=(1, 2)).tolist() == [1, 3, 0]
    assert ledger.counts_over(1, (52,), counts=by_site)[52].sum(axis=1).tolist() == [0, 1, 0]
    ledger.stop_admitted_batch([0, 1], day=1, site=0)
    ledger.stop_non_admitted_batch([3], day=1)
    assert ledger.stops_admitted_by_site.tolist() == [0, 2, 0]
    assert ledger.stops_admitted_by_treating_site.tolist() == [2, 0, 0]
    assert ledger.stops_non_admitted_by_site.tolist() == [1, 0, 0]
    assert ledger.clock_starts_by_site.tolist() == [1, 1, 0]
    assert ledger.waiting_by_site_and_start_day().sum(axis=(1, 2)).tolist() == [0, 1, 0]
    assert ledger.waiting_total == 1
    ledger.reset_week()
    assert ledger.stops_admitted_by_treating_site.tolist() == [0, 0, 0]
