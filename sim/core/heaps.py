"""Binary min-heaps kept in the front of numpy arrays, for the compiled loops (sim.core.compiled).

The same algorithm as Python's `heapq`, so a heap of distinct keys gives them up in the same order (the order of a
heap of distinct keys is the keys' sorted order, whatever its layout). A heap is an array and a size; arrays held in
an `array_list` grow by doubling when a push finds them full.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sim.core.compiled import njit


@njit
def sift_up(heap: np.ndarray, position: int) -> None:
    """Move the item at `position` up to its place (heapq's `_siftdown`)."""
    item = heap[position]
    while position > 0:
        parent = (position - 1) >> 1
        if item < heap[parent]:
            heap[position] = heap[parent]
            position = parent
        else:
            break
    heap[position] = item


@njit
def sift_down(heap: np.ndarray, size: int, position: int) -> None:
    """Move the item at `position` down to its place among the first `size` items."""
    item = heap[position]
    child = 2 * position + 1
    while child < size:
        right = child + 1
        if right < size and heap[right] < heap[child]:
            child = right
        if heap[child] < item:
            heap[position] = heap[child]
            position = child
            child = 2 * position + 1
        else:
            break
    heap[position] = item


@njit
def pop_min(heap: np.ndarray, size: int) -> Any:
    """Take the smallest of the first `size` (> 0) items; the heap is then `size - 1` long."""
    smallest = heap[0]
    last = heap[size - 1]
    if size > 1:
        heap[0] = last
        sift_down(heap, size - 1, 0)
    return smallest


@njit
def heapify(heap: np.ndarray, size: int) -> None:
    for position in range((size >> 1) - 1, -1, -1):
        sift_down(heap, size, position)


@njit
def push_to(heaps: Any, sizes: np.ndarray, index: int, key: Any) -> None:
    """Push `key` onto heap `index` of an `array_list`, doubling its array when full."""
    size = sizes[index]
    heap = heaps[index]
    if size == len(heap):
        grown = np.empty(max(16, 2 * len(heap)), dtype=heap.dtype)
        grown[:size] = heap[:size]
        heaps[index] = grown
        heap = grown
    heap[size] = key
    sift_up(heap, size)
    sizes[index] = size + 1


@njit
def pop_from(heaps: Any, sizes: np.ndarray, index: int) -> Any:
    """Take the smallest key of heap `index` (not empty) of an `array_list`."""
    size = sizes[index]
    sizes[index] = size - 1
    return pop_min(heaps[index], size)


@njit
def push_many(heaps: Any, sizes: np.ndarray, index: int, keys: np.ndarray) -> None:
    """Push keys onto heap `index`: one at a time, or appended and re-heapified when they outnumber the heap (as
    heapq users do; either way the heap gives up the same keys in the same order)."""
    size = sizes[index]
    n = len(keys)
    if n > size:
        heap = heaps[index]
        if size + n > len(heap):
            grown = np.empty(max(16, 2 * (size + n)), dtype=heap.dtype)
            grown[:size] = heap[:size]
            heaps[index] = grown
            heap = grown
        heap[size:size + n] = keys
        sizes[index] = size + n
        heapify(heap, size + n)
    else:
        for k in range(n):
            push_to(heaps, sizes, index, keys[k])
