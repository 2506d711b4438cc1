"""When a count of long waiters clears: the measure the `--replications auto` rule is stated in, and the one every
output reports (the outputs layer imports it from here, so the experiment never imports the outputs)."""
from __future__ import annotations

import numpy as np


def weeks_to_clear(counts: np.ndarray) -> float:
    """Weeks from the start until the count is zero and stays zero; NaN if not within the horizon.

    counts[w] is the count at the end of week w, so clearing at the end of week w means w + 1 weeks.
    Zero from the start (no long waiter at all) gives 0 only if the count is zero at every week's end.
    """
    nonzero = np.flatnonzero(np.asarray(counts) > 0)
    if len(nonzero) == 0:
        return 0.0
    last = int(nonzero[-1])
    return float(last + 2) if last + 1 < len(counts) else float("nan")
