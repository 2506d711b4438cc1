"""What the trusts delivered of the planned capacity (scenario `delivery`), as a multiplier for each model day.

Clinics multiply their day's first-outpatient slots by it, theatres the cases a session gets through. Without a
`delivery` section every day is 1.0 and the model runs the plan as written.
"""
from __future__ import annotations

from typing import Literal

from sim.core.nhs_calendar import multipliers_by_day
from sim.scenario.schema import Scenario


def delivered_share_by_day(scenario: Scenario, stage: Literal["clinics", "theatres"]) -> list[float]:
    """The scale times the month's multiplier, for each day of the horizon."""
    delivery = scenario.delivery
    if delivery is None:
        return [1.0] * scenario.horizon_days
    if stage == "clinics":
        scale, by_month = delivery.clinic_slots_scale, delivery.clinic_monthly_multipliers
    else:
        scale, by_month = delivery.theatre_productivity_scale, delivery.theatre_monthly_multipliers
    return [scale * m for m in multipliers_by_day(scenario.start_date, scenario.horizon_days, by_month)]
