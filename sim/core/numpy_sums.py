"""Compiled copies of numpy's order of summing floats, for compiled loops that replace numpy code and must give
its results to the last bit (a float sum depends on its order). tests/test_vaccination_kernels.py checks them
against `ndarray.sum` on many lengths; a numpy that changed its order would fail there."""
from __future__ import annotations

import numpy as np

from sim.core.compiled import njit


@njit
def numpy_block_sum(values: np.ndarray, start: int, count: int) -> float:
    """numpy's sum of at most 128 floats: fewer than 8 in turn, else eight running sums added as a tree."""
    if count < 8:
        total = -0.0
        for i in range(start, start + count):
            total += values[i]
        return total
    r0, r1, r2, r3 = values[start], values[start + 1], values[start + 2], values[start + 3]
    r4, r5, r6, r7 = values[start + 4], values[start + 5], values[start + 6], values[start + 7]
    i = 8
    whole_blocks = count - count % 8
    while i < whole_blocks:
        at = start + i
        r0 += values[at]
        r1 += values[at + 1]
        r2 += values[at + 2]
        r3 += values[at + 3]
        r4 += values[at + 4]
        r5 += values[at + 5]
        r6 += values[at + 6]
        r7 += values[at + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < count:
        total += values[start + i]
        i += 1
    return total


@njit
def numpy_sum(values: np.ndarray) -> float:
    """`values.sum()` to the last bit, so that compiled code sums floats exactly as the numpy code it replaced:
    numpy's pairwise summation, which sums blocks of up to 128 (`numpy_block_sum`) and splits longer runs in two at
    a multiple of 8, adding the halves' sums. The halving runs on an explicit stack (numba cannot
    call a recursive function from another compiled one)."""
    if len(values) <= 128:
        return numpy_block_sum(values, 0, len(values))
    # frames: a run (start, count) and how far it is: 0 new, 1 awaiting its first half, 2 first half summed,
    # 3 awaiting its second half, 4 both summed
    starts = np.zeros(64, dtype=np.int64)
    counts = np.zeros(64, dtype=np.int64)
    stages = np.zeros(64, dtype=np.int64)
    first_half = np.zeros(64)
    second_half = np.zeros(64)
    counts[0] = len(values)
    top = 0
    while True:
        count = counts[top]
        half = count // 2
        half -= half % 8
        if stages[top] == 0 and count > 128:
            stages[top] = 1
            top += 1
            starts[top], counts[top], stages[top] = starts[top - 1], half, 0
            continue
        if stages[top] == 2:
            stages[top] = 3
            top += 1
            starts[top], counts[top], stages[top] = starts[top - 1] + half, count - half, 0
            continue
        if stages[top] == 0:
            total = numpy_block_sum(values, starts[top], count)
        else:
            total = first_half[top] + second_half[top]
        if top == 0:
            return total
        top -= 1
        if stages[top] == 1:
            first_half[top] = total
            stages[top] = 2
        else:
            second_half[top] = total
            stages[top] = 4
