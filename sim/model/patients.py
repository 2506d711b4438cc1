"""Patients are data: one row per RTT pathway in typed column arrays, indexed by patient id.

Attributes are drawn once, when the referral is created (see `sim.model.referrals`), so a scenario that only
changes capacity sees the same patients as the baseline in the same replication. The hot loops are compiled
(sim.core.compiled) and read these numpy columns directly.
"""
from __future__ import annotations

import numpy as np

# Pathway status codes (one byte each).
NOT_ON_LIST = 0
WAITING_OUTPATIENT = 1        # clock running, waiting for the first outpatient appointment
WAITING_ADMITTED = 2          # clock running, decision to treat made, on the admitted list
STOPPED_ADMITTED = 3          # clock stopped by treatment in theatre
STOPPED_NON_ADMITTED = 4      # clock stopped at outpatients (no operation needed)
REMOVED_OTHER = 5             # removed for a reason other than treatment (validation, moved away, ...)

NO_DAY = -(2**31)             # sentinel in int32 day columns

# column name -> type code (as `array.array` spells them). Minutes and length of stay in float32, days in int32.
_COLUMNS: dict[str, str] = {
    "clock_start_day": "i",
    "specialty": "B",
    "priority": "B",          # 0..3 for P1..P4
    "borough": "B",
    "referred_site": "B",
    "needs_operation": "B",
    "inpatient": "B",
    "virtual": "B",
    "dna_remaining": "B",     # did-not-attends still to happen before the first appointment is kept
    "cancellations_remaining": "B",  # on-the-day cancellations still to happen before treatment
    "hub_eligible": "B",      # a surgical hub may treat them (day case or low-complexity inpatient)
    "theatre_minutes": "f",
    "los_days": "f",
    "outpatient_deferral_days": "H",   # days the patient defers when first offered an outpatient date (0 = never)
    "operation_deferral_days": "H",    # the same for the first operation date; cleared once deferred
    "further_visit_days": "H",         # days between a first attendance that decides nothing and the next visit
    "needs_scarce_resource": "B",      # the operation needs a capped resource (sim.scenario.schema.ScarceResource)
    "stop_day": "i",
    "treated_site": "B",
}


# Columns of the waiting-list mechanisms (sim.scenario.schema.PatientChoice, FurtherOutpatientVisits, ScarceResource):
# a batch may leave them out, meaning "never" (0), as a scenario without the mechanisms has them.
_ZERO_UNLESS_GIVEN = ("outpatient_deferral_days", "operation_deferral_days", "further_visit_days",
                      "needs_scarce_resource")


class _Column:
    """A column of the table as a numpy view of its rows so far (`table.status`, `table.specialty`, ...).

    A view is only valid until the next `append`, which may move the column to a larger array: read it afresh for
    each batch of work rather than keeping it."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, table: PatientTable, owner: type | None = None) -> np.ndarray:
        return table._storage[self.name][:table.n]


class PatientTable:
    """Column store of pathways. Rows are appended in batches; ids are row numbers.

    Each column is a numpy array with room to spare, doubled when full, so the compiled loops
    (sim.core.compiled) and numpy read and write the same memory with no copy, and appending never has to resize
    memory something else is still looking at."""

    status = _Column()
    clock_start_day = _Column()
    specialty = _Column()
    priority = _Column()
    borough = _Column()
    referred_site = _Column()
    needs_operation = _Column()
    inpatient = _Column()
    virtual = _Column()
    dna_remaining = _Column()
    cancellations_remaining = _Column()
    hub_eligible = _Column()
    theatre_minutes = _Column()
    los_days = _Column()
    outpatient_deferral_days = _Column()
    operation_deferral_days = _Column()
    further_visit_days = _Column()
    needs_scarce_resource = _Column()
    stop_day = _Column()
    treated_site = _Column()

    def __init__(self, expected_rows: int = 1024) -> None:
        """`expected_rows`: room to make at once (a run's expected pathways), so that the columns rarely move."""
        self.n = 0
        self._storage: dict[str, np.ndarray] = {name: np.empty(max(expected_rows, 1024), dtype=_np_dtype(code))
                                                for name, code in {"status": "B", **_COLUMNS}.items()}

    def append(self, status: int | np.ndarray, **columns: np.ndarray) -> np.ndarray:
        """Append a batch (numpy columns of equal length) and return the new ids.

        `status` is one code for the whole batch or an array with one per pathway.
        """
        n = len(columns["clock_start_day"])
        missing = set(_COLUMNS) - set(columns) - {"stop_day", "treated_site", *_ZERO_UNLESS_GIVEN}
        if missing:
            raise ValueError(f"missing patient columns: {sorted(missing)}")
        start, stop = self.n, self.n + n
        if stop > len(self._storage["status"]):
            capacity = max(2 * len(self._storage["status"]), stop)
            for name, old in self._storage.items():
                grown = np.empty(capacity, dtype=old.dtype)
                grown[:start] = old[:start]
                self._storage[name] = grown
        storage = self._storage
        storage["status"][start:stop] = status
        for name in _COLUMNS:
            if name == "stop_day":
                storage[name][start:stop] = NO_DAY
            elif name == "treated_site":
                storage[name][start:stop] = 255
            elif name not in columns:
                storage[name][start:stop] = 0
            else:
                storage[name][start:stop] = columns[name]
        self.n = stop
        return np.arange(start, stop, dtype=np.int64)

    def column(self, name: str) -> np.ndarray:
        """A numpy copy of one column (for analysis after the run, never in the hot loop)."""
        return self._storage[name][:self.n].copy()

    def nbytes(self) -> int:
        """The bytes the rows use (not the room to spare)."""
        return sum(column.itemsize * self.n for column in self._storage.values())


def _np_dtype(code: str) -> np.dtype:
    return np.dtype({"i": np.int32, "B": np.uint8, "H": np.uint16, "f": np.float32}[code])
