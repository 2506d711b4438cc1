"""Imports point one way through the layers: core <- scenario <- model <- experiment <- outputs <- cli <- app
(the web app runs the command line's own `run`; nothing below it may import it).

A module may import modules of its own layer or of layers to its left. The check reads the source with `ast`, so it
sees every import statement wherever it stands: at the top, inside a function, under `if TYPE_CHECKING:`. Those last
two are where import loops hide, because they never run at import time. `sim/__init__.py` and `sim/__main__.py` stand
outside the layers (`python -m sim` calls the command line).
"""
from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from helpers import ROOT

pytestmark = pytest.mark.unit

LAYERS = ("core", "scenario", "model", "experiment", "outputs", "cli", "app")
OUTSIDE = {"__init__.py", "__main__.py"}     # files directly in sim/


def imported_modules(tree: ast.Module, package: str) -> list[tuple[int, str]]:
    """(line, dotted name) of everything a module imports; `package` is the importing module's package, for
    relative imports. `from a import b` gives `a.b`, since b may be a module of a."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return sorted(found)


def layer_problems(source_root: Path, top: str = "sim") -> list[str]:
    """One line per import that points the wrong way (or per module that belongs to no layer)."""
    problems: list[str] = []
    for path in sorted((source_root / top).rglob("*.py")):
        rel = path.relative_to(source_root)
        if len(rel.parts) == 2 and rel.name in OUTSIDE:
            continue
        own = rel.parts[1]
        if own not in LAYERS:
            problems.append(f"{rel.as_posix()}: not in a layer folder ({', '.join(LAYERS)})")
            continue
        package = ".".join(rel.parts[:-1])
        for line, name in imported_modules(ast.parse(path.read_text(encoding="utf-8"), str(rel)), package):
            parts = name.split(".")
            if parts[0] != top or len(parts) < 2 or parts[1] not in LAYERS:
                continue
            if LAYERS.index(parts[1]) > LAYERS.index(own):
                problems.append(f"{rel.as_posix()}:{line}: {own} imports {name} ({parts[1]}), a layer to its right")
    return problems


def test_imports_point_only_to_the_same_layer_or_to_the_left():
    problems = layer_problems(ROOT)
    assert not problems, ("expected no import to point to a layer further right in "
                          f"{' <- '.join(LAYERS)}; saw {len(problems)}:\n" + "\n".join(problems))


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_checker_reports_top_level_function_level_and_type_checking_imports(tmp_path):
    root = _tree(tmp_path, {
        "sim/__init__.py": "",
        "sim/core/__init__.py": "",
        "sim/core/rng.py": "import sim.model.engine\n",                  # line 1: top level
        "sim/scenario/__init__.py": "",
        "sim/scenario/schema.py": """\
            def build():
                from sim.model import engine                              # line 2: inside a function
                return engine
            """,
        "sim/model/__init__.py": "",
        "sim/model/engine.py": """\
            from typing import TYPE_CHECKING

            if TYPE_CHECKING:
                from ..experiment.runs import Runner                      # line 4: relative, type only
            """,
        "sim/experiment/__init__.py": "",
        "sim/experiment/runs.py": "from sim import cli\n",                # line 1: `from sim import <layer>`
        "sim/web/page.py": "",                                            # a folder that is no layer
        "sim/cli/main.py": "def serve():\n    import sim.app.page\n",     # line 2: the command line on the app
    })
    problems = layer_problems(root)
    expected = [
        "sim/cli/main.py:2: cli imports sim.app.page (app), a layer to its right",
        "sim/core/rng.py:1: core imports sim.model.engine (model), a layer to its right",
        "sim/experiment/runs.py:1: experiment imports sim.cli (cli), a layer to its right",
        "sim/model/engine.py:4: model imports sim.experiment.runs.Runner (experiment), a layer to its right",
        "sim/scenario/schema.py:2: scenario imports sim.model.engine (model), a layer to its right",
        "sim/web/page.py: not in a layer folder (core, scenario, model, experiment, outputs, cli, app)",
    ]
    assert problems == expected, f"expected the checker to report\n{expected}\nsaw\n{problems}"


def test_checker_accepts_imports_to_the_same_layer_and_to_the_left(tmp_path):
    root = _tree(tmp_path, {
        "sim/__init__.py": "import sim.cli.main\n",                       # outside the layers
        "sim/__main__.py": "from sim.cli.main import main\n",
        "sim/core/__init__.py": "",
        "sim/core/rng.py": "import numpy\nfrom sim.core import nhs_calendar\nfrom . import nhs_calendar as cal\n",
        "sim/core/nhs_calendar.py": "import datetime\nfrom sim import __version__\n",
        "sim/model/__init__.py": "",
        "sim/model/engine.py": """\
            from typing import TYPE_CHECKING

            import sim.core.rng
            from sim.scenario.schema import Scenario

            if TYPE_CHECKING:
                from .replication import Services

            def run():
                from ..core import nhs_calendar
                return nhs_calendar
            """,
        "sim/cli/main.py": "from sim.outputs import report\nfrom sim.model.engine import run\n",
        "sim/app/page.py": "from sim.app import logic\nfrom sim.cli import run\n",   # the app on the command line
    })
    problems = layer_problems(root)
    assert problems == [], f"expected no problem in a tree whose imports all point left or sideways, saw {problems}"


def test_starting_the_command_line_does_not_load_matplotlib():
    """Drawing is loaded only by the commands that draw (about half a second off every other command's start):
    a chart import at the top of a command module would bring it back for all of them."""
    import subprocess
    import sys
    probe = "import sys, sim.cli.main; print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')[:3])"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"importing the command line loaded {out.stdout.strip()}"
