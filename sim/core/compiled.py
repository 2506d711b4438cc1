"""Numba's just-in-time compiler for the few loops that touch every patient, with a pure-Python fallback.

`njit` compiles a function with numba when numba is installed (a wheel from the package index: no compiler on the
user's machine) and caches the machine code on disk, so only the first run on a machine pays for the compiling.
With `SIM_PURE_PYTHON=1` in the environment, or without numba, the same functions run as plain Python: several
times slower, with the same results to the last bit (no fast-math, so floating point is IEEE in both); the
tests run a scenario both ways and compare the outputs byte for byte.

Functions written for `njit` use only numpy arrays, scalars and `array_list` lists of arrays.

numba keys each cached function on its own source file only, yet a compiled function carries what it inlined from
other files (a heap operation, a rank constant): edit sim/core/heaps.py alone and sim/model/theatres.py's cached
session loop would go on running the old heap. So the cache lives in a folder named by a digest of every source
file of the two layers that hold compiled code (sim/core, sim/model): any edit there starts a fresh cache (one
compile, about a minute), and code and cache can never disagree (a NUMBA_CACHE_DIR set outside is replaced).
`make clean` removes the old folders.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

PURE_PYTHON_VARIABLE = "SIM_PURE_PYTHON"
_SIM_DIR = Path(__file__).resolve().parent.parent
CACHE_PREFIX = "numba-cache-"


def sources_digest(sim_dir: Path = _SIM_DIR) -> str:
    """A digest of every source file of the layers that hold compiled functions (sim/core, sim/model)."""
    digest = hashlib.sha256()
    for path in sorted([*(sim_dir / "core").glob("*.py"), *(sim_dir / "model").glob("*.py")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cache_dir(name: str) -> str:
    """sim/__pycache__/<name>, or the same under the temporary folder where the package is read-only."""
    for base in (_SIM_DIR / "__pycache__", Path(tempfile.gettempdir())):
        folder = base / name
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return str(folder)
    return tempfile.mkdtemp(prefix=name)


# Set before numba is imported (it reads it then); worker processes inherit it, and would work out the same folder.
_CACHE_NAME = CACHE_PREFIX + sources_digest()
if Path(os.environ.get("NUMBA_CACHE_DIR", "")).name != _CACHE_NAME:
    os.environ["NUMBA_CACHE_DIR"] = _cache_dir(_CACHE_NAME)

try:
    import numba
    from numba.typed import List as _TypedList
    numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]  # type: ignore[attr-defined]  # if imported before this
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
    a plain list on the pure path. Built from Python, which compiles the typed list's own methods in every process
    (about 1.4 s): the model builds its lists with `int64_arrays` instead."""
    if not COMPILED:
        return list(arrays)
    typed = _TypedList()
    for array in arrays:
        typed.append(array)
    return typed


def int64_arrays(count: int, length: int = 16) -> Any:
    """`count` int64 arrays of `length` (contents undefined), as an `array_list`, built in compiled code so that the
    machine code comes from the cache."""
    if not COMPILED:
        return [np.empty(length, dtype=np.int64) for _ in range(count)]
    return _int64_arrays(count, length)


@njit
def _int64_arrays(count: int, length: int) -> Any:
    arrays = _TypedList()
    for _ in range(count):
        arrays.append(np.empty(length, dtype=np.int64))
    return arrays


@njit
def item_of(arrays: Any, index: int, position: int) -> Any:
    """`arrays[index][position]`, read from Python without compiling the typed list's own item access."""
    return arrays[index][position]


@njit
def slice_of(arrays: Any, index: int, start: int, stop: int) -> np.ndarray:
    """A copy of `arrays[index][start:stop]`, read from Python (see `item_of`)."""
    return arrays[index][start:stop].copy()


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
