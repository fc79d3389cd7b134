"""Cost-benefit per recommendation: benefit days saved and net value in DKK, by hand."""

from __future__ import annotations

import math

import pytest

from bandit.catalog import Catalog, CatalogError, Family, Intervention, intervention_from_mapping
from bandit.context import CitizenContext
from bandit.costs import cost_benefit, expected_benefit_weeks
from tests.helpers.api import CASE, citizen_in_group, context, rec_body


def test_cost_benefit_matches_a_hand_computation() -> None:
    # p = 0.5 (interval 0.4-0.6), baseline p0 = 0.4, H = 26 weeks, 360 DKK a day, cost 1000.
    # Constant hazard: W(p) = p H / -ln(1 - p).
    w_04 = 0.4 * 26 / -math.log(0.6)  # 20.35920...
    w_05 = 0.5 * 26 / -math.log(0.5)  # 18.75504...
    w_06 = 0.6 * 26 / -math.log(0.4)  # 17.02516...
    assert w_04 == pytest.approx(20.35920, abs=1e-5)
    assert w_05 == pytest.approx(18.75504, abs=1e-5)
    days = 5 * (w_04 - w_05)  # 8.02081 benefit days saved
    days_high = 5 * (w_04 - w_06)  # 16.67017
    assert days == pytest.approx(8.02081, abs=1e-5)
    cb = cost_benefit(
        0.5, 0.4, 0.6, p_baseline=0.4, horizon_weeks=26, daily_rate_dkk=360, programme_cost_dkk=1000
    )
    assert cb.benefit_days_saved == pytest.approx(days, rel=1e-12)
    assert cb.benefit_days_saved_low == 0.0  # the interval's low end is the baseline itself
    assert cb.benefit_days_saved_high == pytest.approx(days_high, rel=1e-12)
    assert cb.net_value_dkk == pytest.approx(8.02081 * 360 - 1000, abs=1e-2)  # 1887.49
    assert cb.net_value_dkk_low == -1000.0
    assert cb.net_value_dkk_high == pytest.approx(16.67017 * 360 - 1000, abs=1e-2)  # 5001.26
    # the mapping's ends: no chance -> the whole horizon on benefit, certainty -> none
    assert expected_benefit_weeks(0.0, 26) == 26.0
    assert expected_benefit_weeks(1.0, 26) == 0.0


def test_catalog_costs_default_by_family_and_reject_bad_values() -> None:
    item = Intervention("M1", "Mentor", Family.MENTOR, length_weeks=6)
    assert item.programme_cost_dkk == 6 * 1000.0  # family default [assumption] x length
    row = {"id": "X", "name": "x", "family": "mentor", "length_weeks": "6", "cost_dkk": "2500"}
    assert intervention_from_mapping(row, row=1).programme_cost_dkk == 2500.0
    with pytest.raises(CatalogError, match="cost_dkk"):
        intervention_from_mapping({**row, "cost_dkk": "-1"}, row=1)
    with pytest.raises(CatalogError, match="cost_dkk"):
        Catalog([Intervention("Y", "y", Family.MENTOR, length_weeks=2, cost_dkk=math.inf)])


def test_recommendation_carries_days_saved_and_net_value_with_an_interval(client) -> None:
    runtime = client.app.state.runtime
    raw = citizen_in_group(client, "treatment")
    ctx = context(target_group="kontanthjaelp", weeks_unemployed=30)
    r = client.post("/v1/recommendations", json=rec_body(raw, context=ctx), headers=CASE)
    assert r.status_code == 200, r.text
    options = r.json()["options"]
    assert options
    # the hand computation: baseline = standard contact, scored by the same model
    policy = runtime.policy.get()
    features = CitizenContext.from_mapping(ctx).features()
    p0 = policy.estimates(features, [runtime.catalog.action("STANDARD_CONTACT_001")])[0].mean
    h = runtime.settings.horizon_weeks
    rate = 320.0  # kontanthjaelp, DKK a day

    def weeks(p: float) -> float:
        return h if p == 0 else (0.0 if p == 1 else p * h / -math.log(1 - p))

    for o in options:
        cost = runtime.catalog.get(o["action_id"]).programme_cost_dkk
        assert o["programme_cost_dkk"] == pytest.approx(cost)
        days = 5 * (weeks(p0) - weeks(o["expected_employment"]))
        low = 5 * (weeks(p0) - weeks(o["ci_low"]))
        high = 5 * (weeks(p0) - weeks(o["ci_high"]))
        assert o["benefit_days_saved"] == pytest.approx(days, abs=0.006)
        assert o["benefit_days_saved_low"] == pytest.approx(low, abs=0.006)
        assert o["benefit_days_saved_high"] == pytest.approx(high, abs=0.006)
        assert o["net_value_dkk"] == pytest.approx(days * rate - cost, abs=0.006 * rate)
        assert o["net_value_dkk_low"] == pytest.approx(low * rate - cost, abs=0.006 * rate)
        assert o["net_value_dkk_high"] == pytest.approx(high * rate - cost, abs=0.006 * rate)
        assert o["net_value_dkk_low"] <= o["net_value_dkk"] <= o["net_value_dkk_high"]
        assert "benefit days saved" in o["explanation"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["OptionOut"]
    assert {"benefit_days_saved", "net_value_dkk", "net_value_dkk_low"} <= set(schema["properties"])
