"""Issue 13, item 1: the configured scarce-seat reserve, through the real app.

A real VW model that has learned that a master's graduate finds a job at once under standard
contact and a citizen with little education and a health limitation does not serves the app;
the catalog has 4 private-wage-subsidy seats a week and ``NBI_EQUITY_RESERVE_SHARE=0.5`` holds
round(0.5 x 4) = 2 of them for the higher-need half of recent citizens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bandit.catalog import Family
from bandit.context import CitizenContext
from bandit.feedback import HazardLearner
from service.app import create_app
from service.config import Settings
from service.runtime import fresh_policy
from tests.helpers.api import CASE, citizen_in_group, context, rec_body

CATALOG = """id,name,family,length_weeks,capacity,target_groups
STD,Standard contact,standard_contact,1,,
PWS1,Private wage subsidy,private_wage_subsidy,26,1,
PWS2,Private wage subsidy,private_wage_subsidy,26,3,
MENTOR,Mentor,mentor,4,,
"""
EASY = {"education": "master", "weeks_unemployed": 30}
HARD = {"education": "lower_secondary", "health_limitation": True, "weeks_unemployed": 30}


def _settings(tmp_path: Path, reserve: float) -> Settings:
    path = tmp_path / "catalog.csv"
    path.write_text(CATALOG)
    return Settings(
        _env_file=None,
        sqlite_path=tmp_path / f"nbi-{reserve}.sqlite3",
        catalog_path=path,
        learning="worker",
        model_poll_seconds=3600.0,
        sweep_interval_seconds=3600.0,
        monitor_interval_seconds=3600.0,
        equity_reserve_share=reserve,
        equity_priority_share=0.5,
    )


def _serve_trained_model(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    policy = fresh_policy(runtime.settings)
    assert isinstance(policy, HazardLearner)
    std = runtime.catalog.action("STD")
    easy_f = CitizenContext.from_mapping(context(**EASY)).features()
    hard_f = CitizenContext.from_mapping(context(**HARD)).features()
    for _ in range(60):
        policy.learn_at_risk(easy_f, std, 0, job=True)
        for week in range(0, 26, 5):
            policy.learn_at_risk(hard_f, std, week, job=False)
    runtime.swap_policy(policy)


def _decide(client: TestClient, raw: str, facts: dict[str, Any]) -> dict[str, Any]:
    r = client.post(
        "/v1/recommendations", json=rec_body(raw, context=context(**facts)), headers=CASE
    )
    assert r.status_code == 200, r.text
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    record = runtime.store.get_decision(r.json()["event_id"])
    return {
        "event_id": record.event_id,
        "eligible": set(record.eligible),
        "excluded": record.excluded,
    }


def _assign(client: TestClient, event_id: str, action_id: str) -> None:
    r = client.post(
        f"/v1/decisions/{event_id}/assignment",
        json={"assigned_action_id": action_id, "reason_code": "caseworker_judgement"},
        headers=CASE,
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("reserve", [0.5, 0.0])
def test_the_configured_reserve_keeps_seats_for_the_citizen_in_higher_need(
    tmp_path: Path, reserve: float
) -> None:
    with TestClient(create_app(_settings(tmp_path, reserve))) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        if reserve:
            assert runtime.equity is not None
            assert runtime.equity.reserve == {Family.PRIVATE_WAGE_SUBSIDY: 2}
        else:
            assert runtime.equity is None
        _serve_trained_model(client)
        raw = citizen_in_group(client, "treatment")
        first = _decide(client, raw, EASY)  # nothing to rank against yet: priority
        assert {"PWS1", "PWS2"} <= first["eligible"]
        _assign(client, first["event_id"], "PWS2")  # 3 subsidy seats left
        second = _decide(client, raw, HARD)  # lower need score than the first: priority
        assert {"PWS1", "PWS2"} <= second["eligible"]
        _assign(client, second["event_id"], "PWS2")  # 2 left: the reserve
        third = _decide(client, raw, EASY)
        fourth = _decide(client, raw, HARD)
        assert {"PWS1", "PWS2"} <= fourth["eligible"]
        if reserve:
            assert not third["eligible"] & {"PWS1", "PWS2"}
            assert third["excluded"]["PWS1"] == third["excluded"]["PWS2"] == "capacity"
        else:
            assert {"PWS1", "PWS2"} <= third["eligible"]


def test_settings_validate_the_equity_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="equity_reserve_share"):
        Settings(_env_file=None, equity_reserve_share=1.2)
    monkeypatch.setenv("NBI_EQUITY_SCARCE_FAMILIES", '["private_internship"]')
    monkeypatch.setenv("NBI_EQUITY_RESERVE_SHARE", "0.25")
    s = Settings(_env_file=None)
    assert s.equity_scarce_families == [Family.PRIVATE_INTERNSHIP]
    assert s.equity_reserve_share == 0.25
