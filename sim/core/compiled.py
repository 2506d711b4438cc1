"""Numba's just-in-time compiler for the few loops that touch every patient, with a pure-Python fallback.

`njit` compiles a function with numba when numba is installed (a wheel from the package index: no compiler on the
user's machine) and caches the machine code beside the source, so only the first run on a machine pays for the
compiling. With `SIM_PURE_PYTHON=1` in the environment, or without numba, the same functions run as plain Python:
several times slower, with the same results to the last bit (no fast-math, so floating point is IEEE in both); the
tests run a scenario both ways and compare the outputs byte for byte.

Functions written for `njit` use only numpy arrays, scalars and `array_list` lists of arrays.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

PURE_PYTHON_VARIABLE = "SIM_PURE_PYTHON"

try:
    import numba
    from numba.typed import List as _TypedList
    HAVE_NUMBA = True
except ImportError:     # pragma: no cover - numba is a dependency; this keeps the fallback honest
    HAVE_NUMBA = False

COMPILED = HAVE_NUMBA and os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("1", "true", "yes")


def njit(function: F) -> F:
    """`function` compiled (cached on disk, no Python objects inside), or `function` itself on the pure path."""
    if not COMPILED:
        return function
    return cast(F, numba.njit(cache=True, nogil=True)(function))


def array_list(arrays: Sequence[np.ndarray]) -> Any:
    """A list of same-typed 1-d arrays that compiled functions can read and replace items of (numba's typed list);
    a plain list on the pure path."""
    if not COMPILED:
        return list(arrays)
    typed = _TypedList()
    for array in arrays:
        typed.append(array)
    return typed


@njit
def grown(values: np.ndarray) -> np.ndarray:
    """`values` copied into an array twice as long (for compiled loops that fill an array of unknown length)."""
    bigger = np.empty(2 * len(values), dtype=values.dtype)
    bigger[:len(values)] = values
    return bigger


@njit
def grown_rows(rows: np.ndarray) -> np.ndarray:
    """`rows` (2-d) copied into an array with twice as many rows."""
    bigger = np.empty((2 * rows.shape[0], rows.shape[1]), dtype=rows.dtype)
    bigger[:rows.shape[0]] = rows
    return bigger
