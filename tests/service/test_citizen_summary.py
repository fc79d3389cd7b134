"""Citizen information (issue 9, item 8): ``GET /v1/decisions/{event_id}/citizen-summary``
through the real app on both stores, in Danish and English, for every way a decision is
served (suggestion shown, control group, shadow mode, kill switch)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bandit.explain import DRIVER_FEATURES
from service.app import create_app
from service.citizen_info import fact_phrase
from service.config import Settings
from tests.helpers.api import ADMIN, CASE, PROBLEM, RESEARCHER, citizen_in_group, rec_body

PROTECTED_WORDS = ("female", "kvinde", "non_western", "non-western", "ikke-vestlig")
"""The citizen's protected values (the text may say that gender and origin are not used)."""


@pytest.fixture(params=["sqlite", "redis"])
def cfg(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    common: dict[str, Any] = {
        "policy": "vw",
        "learning": "worker",
        "model_poll_seconds": 3600.0,
        "sweep_interval_seconds": 3600.0,
        "model_approval": "auto",
        "control_share": 0.5,
    }
    if request.param == "sqlite":
        return Settings(store="sqlite", sqlite_path=tmp_path / "nbi.sqlite3", **common)
    server = request.getfixturevalue("contract_redis_server")
    prefix = f"cs{uuid.uuid4().hex[:8]}:"
    return Settings(store="redis", redis_url=server.url, redis_prefix=prefix, **common)


@pytest.fixture
def client(cfg: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cfg)) as c:
        yield c


def _decide(client: TestClient, group: str, start: int = 0) -> dict[str, Any]:
    raw = citizen_in_group(client, group, start)
    body = rec_body(
        raw,
        protected={"gender": "female", "origin": "non_western"},
        context={**rec_body()["context"], "benefit_history_weeks": 40},
    )
    r = client.post("/v1/recommendations", json=body, headers=CASE)
    assert r.status_code == 200, r.text
    return r.json()


def _summary(client: TestClient, event_id: str, lang: str = "da", **headers: str) -> Any:
    return client.get(
        f"/v1/decisions/{event_id}/citizen-summary",
        params={"lang": lang},
        headers=headers or CASE,
    )


def _no_protected(payload: dict[str, Any]) -> None:
    text = str(payload).lower()
    for word in PROTECTED_WORDS:
        assert word not in text, word


def test_a_shown_suggestion_is_explained_in_danish_and_english(client: TestClient) -> None:
    decision = _decide(client, "treatment")
    event_id = decision["event_id"]
    suggested = decision["recommendation"]["name"]
    record = client.app.state.runtime.store.get_decision(event_id)  # type: ignore[attr-defined]
    en = _summary(client, event_id, "en")
    assert en.status_code == 200, en.text
    body = en.json()
    assert body["situation"] == "suggested" and body["suggestion_shown"] is True
    assert body["suggested"] == suggested and suggested in body["text"]
    assert body["model_version"] == record.model_version
    # the main case facts: whitelisted facts of this citizen, at most three, in plain words
    facts = {
        fact_phrase(k, record.context[k], "en") for k in DRIVER_FEATURES if k in record.context
    }
    assert 1 <= len(body["case_facts"]) <= 3
    assert set(body["case_facts"]) <= facts
    assert "You have been unemployed for 30 weeks." in facts
    assert body["caseworker_decision"] == "Your caseworker makes the decision, not the system."
    assert body["assigned"] is None and "not recorded yet" in body["text"]
    assert body["human_review"].startswith("Contact your job centre")
    assert body["human_review"] in body["text"]
    _no_protected(body)

    da = _summary(client, event_id, "da").json()
    assert da["lang"] == "da" and da["situation"] == "suggested"
    assert da["suggested"].endswith(f"({suggested})")
    assert (
        da["caseworker_decision"]
        == "Det er din sagsbehandler, der træffer beslutningen, ikke systemet."
    )
    assert da["human_review"].startswith("Kontakt dit jobcenter")
    assert all(
        f
        in {fact_phrase(k, record.context[k], "da") for k in record.context if k in DRIVER_FEATURES}
        for f in da["case_facts"]
    )
    _no_protected(da)
    # the default language is Danish
    assert client.get(f"/v1/decisions/{event_id}/citizen-summary", headers=CASE).json() == da


def test_the_assignment_is_told_once_recorded(client: TestClient) -> None:
    decision = _decide(client, "treatment")
    event_id, rec = decision["event_id"], decision["recommendation"]["action_id"]
    record = client.app.state.runtime.store.get_decision(event_id)  # type: ignore[attr-defined]
    other = next(a for a in record.eligible if a != rec)
    r = client.post(
        f"/v1/decisions/{event_id}/assignment",
        json={"assigned_action_id": other, "reason_code": "citizen_preference"},
        headers=CASE,
    )
    assert r.status_code == 200, r.text
    en = _summary(client, event_id, "en").json()
    name = client.app.state.runtime.catalog.get(other).name  # type: ignore[attr-defined]
    assert en["assigned"] == name and f"Your caseworker chose: {name}." in en["text"]
    da = _summary(client, event_id, "da").json()
    assert da["assigned"] is not None and da["assigned"].endswith(f"({name})")


def test_the_control_group_is_told_no_suggestion_was_shown(client: TestClient) -> None:
    decision = _decide(client, "control")
    assert decision["recommendation"] is None
    body = _summary(client, decision["event_id"], "en").json()
    assert body["situation"] == "control" and body["suggestion_shown"] is False
    assert body["suggested"] is None and body["case_facts"] == []
    assert body["model_version"] is None
    assert "chosen at random" in body["text"] and "got no suggestion" in body["text"]
    da = _summary(client, decision["event_id"], "da").json()
    assert "tilfældigt" in da["text"] and da["suggested"] is None


@pytest.mark.parametrize(
    ("action", "situation", "words"),
    [
        (("put", "/v1/models/mode", {"mode": "shadow"}), "shadow", "did not affect your case"),
        (("post", "/v1/models/kill", {"serve": "practice"}), "practice", "switched off"),
    ],
)
def test_shadow_mode_and_the_kill_switch_show_no_suggestion(
    client: TestClient, action: tuple[str, str, dict[str, str]], situation: str, words: str
) -> None:
    method, path, payload = action
    r = client.request(method.upper(), path, json=payload, headers=ADMIN)
    assert r.status_code == 200, r.text
    decision = _decide(client, "treatment")
    assert decision["recommendation"] is None
    body = _summary(client, decision["event_id"], "en").json()
    assert body["situation"] == situation and body["suggestion_shown"] is False
    assert body["suggested"] is None and body["case_facts"] == []
    assert words in body["text"]


def test_unknown_event_wrong_role_and_language(client: TestClient) -> None:
    missing = _summary(client, "0" * 32)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert missing.json()["status"] == 404
    event_id = _decide(client, "treatment")["event_id"]
    assert _summary(client, event_id, **RESEARCHER).status_code == 403
    assert client.get(f"/v1/decisions/{event_id}/citizen-summary").status_code == 401
    bad = _summary(client, event_id, "fr")
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert _summary(client, event_id, **ADMIN).status_code == 200


def test_the_review_contact_is_configurable(cfg: Settings) -> None:
    custom = cfg.model_copy(
        update={
            "citizen_review_contact_da": "Ring til Jobcenter Aarhus på 8940 0000.",
            "citizen_review_contact_en": "Call Jobcenter Aarhus on 8940 0000.",
        }
    )
    with TestClient(create_app(custom)) as c:
        event_id = _decide(c, "treatment")["event_id"]
        assert _summary(c, event_id, "da").json()["human_review"] == (
            "Ring til Jobcenter Aarhus på 8940 0000."
        )
        en = _summary(c, event_id, "en").json()
        assert en["text"].endswith("Call Jobcenter Aarhus on 8940 0000.")


def test_the_endpoint_is_documented_with_its_role(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/decisions/{event_id}/citizen-summary"]["get"]
    assert "Role: case" in op["description"]
    assert {"200", "401", "403", "404", "422"} <= set(op["responses"])
    lang = next(p for p in op["parameters"] if p["name"] == "lang")
    assert lang["schema"]["enum"] == ["da", "en"] or "da" in str(lang["schema"])


def _vw_decision(trained: bool, tmp_path: Path) -> tuple[Any, Any]:
    """A real VW policy (rewards: a job early in the spell only) and its decision record for a
    citizen 60 weeks unemployed."""
    import random

    from bandit.catalog import default_catalog
    from bandit.context import CitizenContext
    from bandit.control import Group
    from bandit.records import DecisionRecord
    from service.runtime import fresh_policy
    from tests.helpers.api import context

    settings = Settings(sqlite_path=tmp_path / "x.sqlite3", policy="vw", delay_strategy="at_once")
    policy = fresh_policy(settings)
    actions = [item.as_action() for item in default_catalog()]
    rng = random.Random(0)
    for i in range(400 if trained else 0):
        weeks = rng.choice([2, 60])
        features = CitizenContext.from_mapping(context(weeks_unemployed=weeks)).features()
        policy.learn(policy.choose(features, actions, event_id=f"{i:032x}"), float(weeks < 26))
    features = CitizenContext.from_mapping(context(weeks_unemployed=60)).features()
    d = policy.choose(features, actions, event_id="f" * 32)
    record = DecisionRecord(
        "e1",
        0.0,
        "p_x",
        Group.TREATMENT,
        features,
        tuple(a.id for a in d.actions),
        d.pmf,
        d.chosen_action.id,
        d.propensity,
        policy.model_version,
        policy.name,
    )
    return policy, record


def test_facts_are_ranked_by_what_moves_the_model_and_an_untrained_model_says_so(
    tmp_path: Path,
) -> None:
    from bandit.catalog import default_catalog
    from service.citizen_info import citizen_text, ranked_facts

    catalog = default_catalog()
    policy, record = _vw_decision(True, tmp_path)
    facts, ranked = ranked_facts(record, policy, catalog)
    assert ranked and facts[0] == "weeks_unemployed"  # the only fact the rewards depended on
    text = citizen_text(record, facts, catalog, "en", "Call us.", ranked=ranked).text
    assert "based mainly on these facts in your case: You have been unemployed for 60" in text
    policy, record = _vw_decision(False, tmp_path / "u")
    facts, ranked = ranked_facts(record, policy, catalog)
    assert not ranked and facts == [k for k in DRIVER_FEATURES if k in record.context]
    text = citizen_text(record, facts, catalog, "da", "Ring.", ranked=ranked).text
    assert "Systemet har kun lært lidt endnu" in text
