#!/usr/bin/env python3
"""North West London capacity simulator. `python run_sim.py` runs scenarios/baseline.yaml; see --help."""
import atexit
import os
import sys

_exit_code: "int | None" = None


def _exit_without_teardown() -> None:
    """Leave once every exit handler has run, without the interpreter's teardown of its modules.

    Registered before anything is imported, so it runs last of the exit handlers: multiprocessing's, logging's,
    temporary folders' and the rest have all run by then. What it skips is freeing pandas, matplotlib and numba
    one object at a time (0.1-0.2 s, measured: a tenth of a `report`). Every file the command writes is closed by
    then (each is written in a `with` block); standard output and error are flushed here. Where the command ended in
    an unexpected error (no exit code), or a stream cannot be flushed (a pipe closed after the command finished),
    the exit is the interpreter's own, with its traceback or its message and exit code."""
    if _exit_code is None:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(_exit_code)


if __name__ == "__main__":
    atexit.register(_exit_without_teardown)
    from sim.cli.main import main

    _exit_code = main()
    sys.exit(_exit_code)
