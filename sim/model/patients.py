"""Patients are data: one row per RTT pathway in typed column arrays, indexed by patient id.

Attributes are drawn once, when the referral is created (see `sim.model.referrals`), so a scenario that only
changes capacity sees the same patients as the baseline in the same replication. The hot loops read
these columns through `array.array`/`bytearray`, which index faster from Python than numpy arrays.
"""
from __future__ import annotations

from array import array

import numpy as np

# Pathway status codes (one byte each).
NOT_ON_LIST = 0
WAITING_OUTPATIENT = 1        # clock running, waiting for the first outpatient appointment
WAITING_ADMITTED = 2          # clock running, decision to treat made, on the admitted list
STOPPED_ADMITTED = 3          # clock stopped by treatment in theatre
STOPPED_NON_ADMITTED = 4      # clock stopped at outpatients (no operation needed)
REMOVED_OTHER = 5             # removed for a reason other than treatment (validation, moved away, ...)

NO_DAY = -(2**31)             # sentinel in int32 day columns

# column name -> array typecode. Minutes and length of stay in float32, days in int32.
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


class PatientTable:
    """Column store of pathways. Rows are appended in batches; ids are row numbers."""

    def __init__(self) -> None:
        self.n = 0
        self.status = bytearray()
        self.clock_start_day = array("i")
        self.specialty = array("B")
        self.priority = array("B")
        self.borough = array("B")
        self.referred_site = array("B")
        self.needs_operation = array("B")
        self.inpatient = array("B")
        self.virtual = array("B")
        self.dna_remaining = array("B")
        self.cancellations_remaining = array("B")
        self.hub_eligible = array("B")
        self.theatre_minutes = array("f")
        self.los_days = array("f")
        self.outpatient_deferral_days = array("H")
        self.operation_deferral_days = array("H")
        self.further_visit_days = array("H")
        self.needs_scarce_resource = array("B")
        self.stop_day = array("i")
        self.treated_site = array("B")

    def append(self, status: int | np.ndarray, **columns: np.ndarray) -> np.ndarray:
        """Append a batch (numpy columns of equal length) and return the new ids.

        `status` is one code for the whole batch or an array with one per pathway.
        """
        n = len(columns["clock_start_day"])
        missing = set(_COLUMNS) - set(columns) - {"stop_day", "treated_site", *_ZERO_UNLESS_GIVEN}
        if missing:
            raise ValueError(f"missing patient columns: {sorted(missing)}")
        for name, code in _COLUMNS.items():
            if name == "stop_day":
                values = np.full(n, NO_DAY, dtype=np.int32)
            elif name == "treated_site":
                values = np.full(n, 255, dtype=np.uint8)
            elif name not in columns:
                values = np.zeros(n, dtype=_np_dtype(code))
            else:
                values = columns[name]
            getattr(self, name).frombytes(np.ascontiguousarray(values, dtype=_np_dtype(code)).tobytes())
        if isinstance(status, np.ndarray):
            self.status.extend(status.astype(np.uint8).tobytes())
        else:
            self.status.extend(bytes([status]) * n)
        ids = np.arange(self.n, self.n + n, dtype=np.int64)
        self.n += n
        return ids

    def column(self, name: str) -> np.ndarray:
        """A numpy copy of one column (for analysis after the run, never in the hot loop)."""
        if name == "status":
            return np.frombuffer(bytes(self.status), dtype=np.uint8)
        col = getattr(self, name)
        return np.frombuffer(col.tobytes(), dtype=_np_dtype(col.typecode))

    def nbytes(self) -> int:
        return len(self.status) + sum(getattr(self, c).itemsize * len(getattr(self, c)) for c in _COLUMNS)


def _np_dtype(code: str) -> np.dtype:
    return np.dtype({"i": np.int32, "B": np.uint8, "H": np.uint16, "f": np.float32}[code])
