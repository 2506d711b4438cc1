"""Workers forked and stopped at once: a signal that reaches a new worker before it has set its own handlers must
not run the parent's handler in it (sim.core.fork_signals).

The command line's SIGTERM handler raises an exception (sim.cli.main). Before the mask, a worker terminated the
moment it was forked raised it in Python's after-fork clean-up or in the caller's own code: tracebacks on the
terminal, a terminated worker that lived on because the handler had then set SIGTERM to ignored, and once a whole
test run hung on a forked copy of a pytest worker waiting for its next test."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from helpers import ROOT

pytestmark = pytest.mark.behaviour

# Every way the outputs and the executors fork, each stopped the moment its workers exist, many times, under the
# command line's SIGTERM handler. A worker that ran the parent's code says so and leaves at once (no fork bomb).
STOPPED_AT_ONCE = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from sim.cli.main import _sigterm_as_interrupt
    from sim.experiment.executors import LocalProcesses
    from sim.outputs.forking import forked
    from sim.outputs.report.figures import Chart, drawing

    parent = os.getpid()
    plan = [Chart(f"chart{i}", "t", "c", Path(sys.argv[1]), lambda: time.sleep(20)) for i in range(2)]

    def check(where):
        if os.getpid() != parent:
            print(f"a forked copy ran the parent's code after {where}", flush=True)
            os._exit(3)

    with _sigterm_as_interrupt():
        for i in range(40):
            try:
                with forked(time.sleep, 20):
                    raise RuntimeError("the caller's block fails at once")
            except RuntimeError:
                pass
            check("forked")
        for i in range(8):
            try:
                with drawing(plan, workers=2):
                    raise RuntimeError("the report fails at once")
            except RuntimeError:
                pass
            check("drawing")
        for i in range(8):
            LocalProcesses(2).terminate()
            check("LocalProcesses")
    print("done", flush=True)
""")


def test_workers_stopped_as_soon_as_forked_end_quietly_and_never_run_the_parents_code(tmp_path):
    """Before sim.core.fork_signals this printed tracebacks in 5 of 10 forks, and each of those workers outlived
    its SIGTERM by the time it slept (the run took minutes, not seconds)."""
    script = tmp_path / "stopped_at_once.py"
    script.write_text(STOPPED_AT_ONCE, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stdout == "done\n", done.stdout
    assert done.stderr == "", done.stderr[-3000:]
