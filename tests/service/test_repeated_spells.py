"""Issue 13.5: repeated spells and transfers through the real app, on both stores.

A citizen's second spell (a later recommendation whose spell started after the first one) keeps
the RCT arm and carries the history features derived from the first decision; the learner's
view of the record (and its VW example) has them. A transfer to another job centre keeps the
arm (per-citizen randomisation) and the records stay linked by the pseudonym.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bandit.privacy import pseudonymise, pseudonymise_cluster
from bandit.vw.examples import format_shared
from service.app import create_app
from service.learner import decision_from_record
from tests.helpers.api import CASE, citizen_in_group, context, rec_body

HISTORY = ("prior_spells", "weeks_since_last_spell", "last_family")


@pytest.fixture(params=["sqlite", "redis"])
def cfg(request: pytest.FixtureRequest, settings: Any) -> Any:
    update: dict[str, Any] = {}
    if request.param == "redis":
        server = request.getfixturevalue("contract_redis_server")
        server.flush()
        update |= {"store": "redis", "redis_url": server.url, "redis_prefix": "spells:"}
    return settings.model_copy(update=update)


@pytest.fixture
def app(cfg: Any) -> Iterator[TestClient]:
    with TestClient(create_app(cfg)) as c:
        yield c


def _recommend(client: TestClient, citizen: str, weeks: int, **extra: Any) -> dict[str, Any]:
    body = rec_body(citizen, context=context(weeks_unemployed=weeks), **extra)
    r = client.post("/v1/recommendations", json=body, headers=CASE)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


@pytest.mark.parametrize("group", ["treatment", "control"])
def test_second_spell_keeps_the_arm_and_the_learner_sees_the_history(app, group):
    runtime = app.app.state.runtime
    citizen = citizen_in_group(app, group)
    first = _recommend(app, citizen, weeks=30)
    assert first["group"] == group
    # a second meeting in the same spell is not a new spell: no history
    same = _recommend(app, citizen, weeks=30)
    assert not set(HISTORY) & set(runtime.store.get_decision(same["event_id"]).context)
    assigned = first["recommendation"]["action_id"] if group == "treatment" else None
    if assigned is None:  # control: practice as usual, recorded by the case system
        assigned = runtime.store.get_decision(first["event_id"]).eligible[0]
    r = app.post(
        f"/v1/decisions/{first['event_id']}/assignment",
        json={"assigned_action_id": assigned},
        headers=CASE,
    )
    assert r.status_code == 200, r.text

    # the citizen is back: a new spell, ten weeks in (it started 20 weeks after the first)
    second = _recommend(app, citizen, weeks=10)
    assert second["group"] == group
    record = runtime.store.get_decision(second["event_id"])
    family = runtime.catalog.get(assigned).family.value
    assert record.context["prior_spells"] == 1
    assert record.context["last_family"] == family
    assert record.context["weeks_since_last_spell"] == 0  # seconds ago, in wall-clock time
    key = runtime.settings.pseudonym_key_bytes()
    assert record.citizen_key == pseudonymise(citizen, key)
    assert citizen not in str(record.to_dict())  # no raw id anywhere in the record

    # what the learner learns from: the record's context, formatted as the VW shared line
    if group == "treatment":
        decision = decision_from_record(record, runtime.catalog)
        assert decision.context["prior_spells"] == 1
        shared = format_shared(decision.context)
        assert "prior_spells:0.2" in shared and f"last_family={family}" in shared

    # a third spell: two earlier spells
    third = _recommend(app, citizen, weeks=0)
    # spell starts: 30 and 10 weeks ago, now: two earlier spells
    assert runtime.store.get_decision(third["event_id"]).context["prior_spells"] == 2


def test_case_system_history_wins_as_a_whole(app):
    runtime = app.app.state.runtime
    citizen = citizen_in_group(app, "treatment")
    _recommend(app, citizen, weeks=30)
    body = rec_body(citizen, context=context(weeks_unemployed=2, prior_spells=3))
    r = app.post("/v1/recommendations", json=body, headers=CASE)
    assert r.status_code == 200, r.text
    ctx = runtime.store.get_decision(r.json()["event_id"]).context
    assert ctx["prior_spells"] == 3 and "last_family" not in ctx
    bad = rec_body(citizen, context=context(last_family="not_a_family"))
    assert app.post("/v1/recommendations", json=bad, headers=CASE).status_code == 422


def test_transfer_between_job_centres_keeps_arm_and_records(app):
    runtime = app.app.state.runtime
    key = runtime.settings.pseudonym_key_bytes()
    for group in ("treatment", "control"):
        citizen = citizen_in_group(app, group, start=200)
        first = _recommend(app, citizen, weeks=20, jobcentre_id="JC-North")
        moved = _recommend(app, citizen, weeks=1, jobcentre_id="JC-South")
        assert first["group"] == moved["group"] == group
        old = runtime.store.get_decision(first["event_id"])
        new = runtime.store.get_decision(moved["event_id"])
        assert old.citizen_key == new.citizen_key  # linked by the pseudonym
        assert old.jobcentre_key == pseudonymise_cluster("JC-North", key, "jobcentre")
        assert new.jobcentre_key == pseudonymise_cluster("JC-South", key, "jobcentre")
        assert new.context["prior_spells"] == 1
        records = runtime.store.decisions_of(new.citizen_key)
        assert [r.event_id for r in records] == [first["event_id"], moved["event_id"]]


def test_under_job_centre_randomisation_the_arm_follows_the_job_centre(settings):
    """Cluster randomisation: a transferred citizen is served in the arm of the job centre now
    serving them (its caseworkers must not see recommendations in a control centre); the
    records stay linked, and each carries its cluster, so the analysis can keep the first."""
    centres = [f"JC-{i}" for i in range(5)]  # round(0.2 x 5) = 1 control centre
    update = {"control_unit": "jobcentre", "control_clusters": centres}
    with TestClient(create_app(settings.model_copy(update=update))) as client:
        runtime = client.app.state.runtime
        key = runtime.settings.pseudonym_key_bytes()
        arm = {
            c: runtime.experiment.cluster_group(pseudonymise_cluster(c, key, "jobcentre")).value
            for c in centres
        }
        control = next(c for c in centres if arm[c] == "control")
        treatment = next(c for c in centres if arm[c] == "treatment")
        first = _recommend(client, "0101901111", weeks=20, jobcentre_id=treatment)
        moved = _recommend(client, "0101901111", weeks=1, jobcentre_id=control)
        assert (first["group"], moved["group"]) == ("treatment", "control")
        new = runtime.store.get_decision(moved["event_id"])
        old = runtime.store.get_decision(first["event_id"])
        assert new.citizen_key == old.citizen_key and new.cluster_key != old.cluster_key
        assert new.context["prior_spells"] == 1
