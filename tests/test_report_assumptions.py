"""The assumptions table takes its labels and units from the scenario schema: a field's title, the unit its type
carries, the labels of a choice's values. A section or value the report has never seen needs no edit there."""
from __future__ import annotations

import datetime as dt
import typing

import pytest
from pydantic import BaseModel, Field

from helpers import BASELINE
from sim.outputs.report.assumptions import scenario_assumptions
from sim.outputs.run_reader import ScenarioInfo
from sim.scenario import schema
from sim.scenario.schema import Pounds, Scenario, Share
from sim.scenario.yaml_files import load_raw

pytestmark = pytest.mark.unit


def _info(config: dict) -> ScenarioInfo:
    return ScenarioInfo(name="s", title=str(config.get("title", "s")), start=dt.date(2021, 6, 7), horizon_weeks=6,
                        replications=1, config=config)


def _minimal(**sections: object) -> dict:
    return {"name": "s", "title": "Small", "start_date": dt.date(2021, 6, 7), "horizon_weeks": 6, **sections}


def _json_nodes(node: object, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _json_nodes(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _json_nodes(value, f"{path}[{i}]")


def test_every_number_between_zero_and_one_has_a_unit():
    """A number the schema bounds to 0..1 is a share (or a factor): its type must say so, or the report would
    show 0.25 where a reader expects 25%."""
    missing = []
    for path, node in _json_nodes(Scenario.model_json_schema()):
        low = node.get("minimum", node.get("exclusiveMinimum"))
        high = node.get("maximum", node.get("exclusiveMaximum"))
        if node.get("type") == "number" and low is not None and high is not None and low >= 0 and high <= 1:
            if "unit" not in node:
                missing.append(path)
    assert not missing, f"expected a unit (e.g. the Share type) on every number bounded to 0..1, missing: {missing}"


def test_value_labels_name_every_value_of_their_choice():
    models = [m for m in vars(schema).values() if isinstance(m, type) and issubclass(m, BaseModel)
              and m.__module__ == schema.__name__]
    checked = 0
    for model in models:
        for name, info in model.model_fields.items():
            labels = (info.json_schema_extra or {}).get("value_labels") if isinstance(info.json_schema_extra,
                                                                                       dict) else None
            if labels is None:
                continue
            values = {v for arg in [info.annotation, *typing.get_args(info.annotation)]
                      if typing.get_origin(arg) is typing.Literal for v in typing.get_args(arg)}
            assert set(labels) == values, \
                f"expected {model.__name__}.{name} to label exactly its values {sorted(values)}, saw {sorted(labels)}"
            checked += 1
    assert checked >= 4, f"expected value labels on the booking policy, pooling and others, found {checked}"


def test_baseline_rows_read_labels_units_and_choices_from_the_schema():
    raw = load_raw(BASELINE)
    rows = dict(scenario_assumptions(_info(raw)))
    policies = Scenario.model_fields["booking_policy"].json_schema_extra["value_labels"]
    assert rows["Booking policy"] == policies[raw["booking_policy"]], \
        f"expected the booking policy's label from the schema, saw {rows['Booking policy']!r}"
    assert rows["Virtual outpatient share"] == f"{raw['outpatients']['virtual_share'] * 100:g}%", \
        "expected the field's title as the label and its Share type as a percentage"
    assert "workload threshold 90%" in rows["Staff: fatigue"], \
        f"expected a share shown as a percentage by its type, whatever its name, saw {rows['Staff: fatigue']!r}"
    assert "paid above threshold, share of tariff 120%" in rows["Finance: funding rules by financial year: 2021/22"], \
        "expected a share above 1 as a percentage, labelled by the field's title"
    assert rows["Finance: block income per year"] == "£303.3m", "expected pounds in £ million to one decimal"
    assert rows["Staff: extra absence per 1,000 COVID-19 inpatients"] == "2%", \
        "expected the field's title, with its acronym kept, and its unit"
    assert rows["Finance: costs: vaccination per dose"].startswith("£"), \
        "expected a section too long for one cell shown key by key, nothing cut off"


def test_a_section_the_schema_does_not_describe_is_shown_as_written():
    """No unit guessed from a key's name: without a schema field the value is shown as written."""
    rows = dict(scenario_assumptions(_info(_minimal(booking_policy="a_new_policy",
                                                    new_section={"waiting_share": 0.25, "sites": 3}))))
    assert rows["Booking policy"] == "a_new_policy", "expected a value with no label shown as written"
    assert rows["New section: waiting share"] == "0.25", "expected no percentage guessed from the name"
    assert rows["New section: sites"] == "3", f"expected every key of the new section, saw {rows}"


def test_a_new_schema_section_needs_no_edit_in_the_report():
    class Capacity(BaseModel):
        extra_share: Share = Field(title="Extra capacity booked")
        budget_per_year: Pounds = 0.0
        mode: typing.Literal["spot", "block"] = Field(
            default="spot", json_schema_extra=schema.value_labels(spot="Bought case by case", block="A block contract"))

    class Wider(Scenario):
        capacity: Capacity | None = Field(default=None, title="Extra capacity")

    config = _minimal(capacity={"extra_share": 0.125, "budget_per_year": 2_500_000, "mode": "block"})
    rows = dict(scenario_assumptions(_info(config), schema=Wider))
    assert rows.get("Extra capacity: extra capacity booked") == "12.5%", f"expected the title and unit, saw {rows}"
    assert rows.get("Extra capacity: budget per year") == "£2.5m", f"expected pounds from the type, saw {rows}"
    assert rows.get("Extra capacity: mode") == "A block contract", f"expected the value's label, saw {rows}"


def test_sources_follow_extends_and_drop_what_a_later_file_or_set_changes(tmp_path):
    """The [S]/[D]/[E] comments a run records for the key assumptions' Source column."""
    from sim.scenario.sources import stated_sources, without_overridden
    (tmp_path / "base.yaml").write_text(
        "referrals:\n"
        "  referrals_per_week: 100   # [D] fitted: published clock starts\n"
        "  demand_growth_per_year: 0.03   # [E] planning assumption\n"
        "title: \"a # not a comment [S]\"\n"
        "start_list:\n"
        "  # [S] the published list, May 2021\n"
        "  bands: []\n"
        "targets:\n"
        "  no_52w_waiters_by: 2022-03-31   # [S] the plan\n", encoding="utf-8")
    (tmp_path / "child.yaml").write_text(
        "extends: base.yaml\n"
        "referrals:\n"
        "  demand_growth_per_year: 0.05\n"
        "removals:\n"
        "  rate_multiplier: 2.0   # [E] judgement\n", encoding="utf-8")
    sources = stated_sources(tmp_path / "child.yaml")
    assert sources == {"referrals.referrals_per_week": "[D] fitted: published clock starts",
                       "start_list": "[S] the published list, May 2021",
                       "targets.no_52w_waiters_by": "[S] the plan",
                       "removals.rate_multiplier": "[E] judgement"}, sources
    kept = without_overridden(sources, ["referrals.referrals_per_week=5", "start_list.bands=[]"])
    assert set(kept) == {"targets.no_52w_waiters_by", "removals.rate_multiplier"}, kept
