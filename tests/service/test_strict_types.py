"""Issue 11.9: the API takes JSON types as they are; strings and booleans are never coerced
into numbers or flags (``"weeks_to_job": true`` once settled as a job after 1 week)."""

from __future__ import annotations

import pytest

from tests.helpers.api import CASE, PROBLEM, context, rec_body, store_state

COERCIBLE = [
    ("age as string", {"age": "34"}),
    ("age as float", {"age": 34.0}),
    ("flag as string", {"health_limitation": "yes"}),
    ("flag as number", {"single_parent": 1}),
    ("index as string", {"labour_demand_index": "1.5"}),
    ("weeks as string", {"weeks_unemployed": "30"}),
]


@pytest.mark.parametrize(("name", "change"), COERCIBLE, ids=[c[0] for c in COERCIBLE])
def test_context_values_of_the_wrong_json_type_are_422(client, name, change):
    store = client.app.state.runtime.store
    before = store_state(store)
    r = client.post("/v1/recommendations", json=rec_body(context=context(**change)), headers=CASE)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (name, r.text)
    assert store_state(store) == before


def test_integers_stay_valid_for_float_fields(client):
    r = client.post(
        "/v1/recommendations", json=rec_body(context=context(labour_demand_index=2)), headers=CASE
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("weeks", [True, "3"])
def test_outcome_weeks_of_the_wrong_json_type_are_422(client, weeks):
    event_id = client.post("/v1/recommendations", json=rec_body(), headers=CASE).json()["event_id"]
    r = client.post(
        "/v1/outcomes",
        json={"event_id": event_id, "status": "employed", "weeks_to_job": weeks},
        headers=CASE,
    )
    assert r.status_code == 422, r.text
    assert client.app.state.runtime.store.get_decision(event_id).outcome is None
    r = client.post("/v1/recommendations", json=rec_body(max_options="3"), headers=CASE)
    assert r.status_code == 422
