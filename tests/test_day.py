"""The order of a model day: one table of time slots, and services that wait for theirs and for nothing else."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import simpy

from sim.model import day

pytestmark = pytest.mark.unit

MODEL_DIR = Path(__file__).resolve().parent.parent / "sim" / "model"


def test_the_table_runs_from_midnight_to_the_end_of_the_day_in_time_order():
    times = [slot.day_fraction for slot in day.DAY_ORDER]
    assert times == sorted(times)
    assert 0.0 <= times[0] and times[-1] < 1.0
    names = [slot.name for slot in day.DAY_ORDER]
    assert len(set(names)) == len(names)


def test_what_must_come_first_does():
    position = {slot.name: i for i, slot in enumerate(day.DAY_ORDER)}

    def before(first: day.Slot, then: day.Slot) -> None:
        assert first.day_fraction < then.day_fraction, f"{first.name} must act before {then.name}"
        assert position[first.name] < position[then.name]

    before(day.REFERRALS, day.CLINICS)           # the day's referrals can be seen the same day
    before(day.COVID, day.STAFF)                 # beds and closures are set before anything uses them
    before(day.STAFF, day.VACCINATION)           # centres take staff from today's roster
    before(day.VACCINATION, day.CLINICS)         # ... before clinics and theatres use what is left
    before(day.CLINICS, day.HUB_THEATRES)        # decisions to treat reach the list before sessions
    before(day.HUB_THEATRES, day.MAIN_THEATRES)  # hubs staff first
    before(day.MAIN_THEATRES, day.REMOVALS)
    assert day.DAY_ORDER[-1] is day.MONITOR      # the weekly row sees everything of the week


def test_wait_until_wakes_at_the_slot_and_not_again_once_it_has_passed():
    env = simpy.Environment()
    woke: list[float] = []

    def service(env: simpy.Environment):
        for d in (0, 2):
            yield from day.wait_until(env, d, day.CLINICS)
            woke.append(env.now)
            yield from day.wait_until(env, d, day.CLINICS)   # already there: no wait
            woke.append(env.now)

    env.process(service(env))
    env.run()
    assert woke == [0.3, 0.3, 2.3, 2.3]


def test_no_model_module_keeps_a_time_of_day_of_its_own():
    """Every time of day a service acts at is a slot of sim.model.day, none a constant elsewhere."""
    offenders = []
    for path in MODEL_DIR.glob("*.py"):
        if path.name == "day.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and ("TIME_OF_" in target.id or "END_OF_WEEK" in target.id):
                        offenders.append(f"{path.name}: {target.id}")
    assert not offenders, offenders
