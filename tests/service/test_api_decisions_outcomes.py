"""Assignment and outcome endpoints, settlement and the horizon sweep, through the real app."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest

from bandit.feedback import WEEK_SECONDS
from service.settle import sweep_expired
from tests.helpers.api import CASE, PROBLEM, citizen_in_group, rec_body, store_state


def _treatment_event(client, start: int = 0) -> tuple[str, str]:
    raw = citizen_in_group(client, "treatment", start)
    body = client.post("/v1/recommendations", json=rec_body(raw), headers=CASE).json()
    return body["event_id"], body["recommendation"]["action_id"]


def _other_eligible(client, event_id: str, not_this: str) -> str:
    record = client.app.state.runtime.store.get_decision(event_id)
    return next(a for a in record.eligible if a != not_this)


# ---------------------------------------------------------------------------- assignment


def test_following_the_recommendation_needs_no_reason(client):
    event_id, rec = _treatment_event(client)
    r = client.post(
        f"/v1/decisions/{event_id}/assignment", json={"assigned_action_id": rec}, headers=CASE
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "event_id": event_id,
        "assigned_action_id": rec,
        "reason_code": None,
        "complied": True,
        "changed": True,
        "warnings": [],
    }
    again = client.post(
        f"/v1/decisions/{event_id}/assignment", json={"assigned_action_id": rec}, headers=CASE
    )
    assert again.status_code == 200 and again.json()["changed"] is False


def test_a_different_assignment_needs_a_reason_code(client):
    event_id, rec = _treatment_event(client)
    other = _other_eligible(client, event_id, rec)
    store = client.app.state.runtime.store
    before = store_state(store)
    r = client.post(
        f"/v1/decisions/{event_id}/assignment", json={"assigned_action_id": other}, headers=CASE
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert "reason_code" in r.json()["detail"]
    assert store_state(store) == before
    ok = client.post(
        f"/v1/decisions/{event_id}/assignment",
        json={"assigned_action_id": other, "reason_code": "citizen_preference"},
        headers=CASE,
    )
    assert ok.status_code == 200 and ok.json()["complied"] is False
    assert store.get_decision(event_id).assignment_reason == "citizen_preference"


@pytest.mark.parametrize(
    ("path_event", "body", "status"),
    [
        ("missing", {"assigned_action_id": "MENTOR_001"}, 404),
        (None, {"assigned_action_id": "NOT_IN_CATALOG"}, 422),
        (None, {"assigned_action_id": "MENTOR_001", "reason_code": "because"}, 422),
        (None, {}, 422),
        (None, {"assigned_action_id": 7}, 422),
        ("bad id!", {"assigned_action_id": "MENTOR_001"}, 422),
    ],
)
def test_bad_assignments_are_refused_and_change_nothing(client, path_event, body, status):
    event_id, _ = _treatment_event(client)
    store = client.app.state.runtime.store
    before = store_state(store)
    target = event_id if path_event is None else path_event
    r = client.post(f"/v1/decisions/{target}/assignment", json=body, headers=CASE)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert store_state(store) == before


def test_a_second_different_assignment_conflicts(client):
    event_id, rec = _treatment_event(client)
    client.post(
        f"/v1/decisions/{event_id}/assignment", json={"assigned_action_id": rec}, headers=CASE
    )
    other = _other_eligible(client, event_id, rec)
    before = store_state(client.app.state.runtime.store)
    r = client.post(
        f"/v1/decisions/{event_id}/assignment",
        json={"assigned_action_id": other, "reason_code": "other"},
        headers=CASE,
    )
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert store_state(client.app.state.runtime.store) == before


# ---------------------------------------------------------------------------- outcomes


def test_a_job_within_the_horizon_settles_reward_one_once(client):
    event_id = _backdated_event(client, 7)  # a job in week 6 is known 7 weeks on
    body = {"event_id": event_id, "status": "employed", "weeks_to_job": 6}
    r = client.post("/v1/outcomes", json=body, headers=CASE)
    assert r.status_code == 200, r.text
    assert (r.json()["reward"], r.json()["censored"], r.json()["changed"]) == (1.0, False, True)
    store = client.app.state.runtime.store
    before = store_state(store)
    again = client.post("/v1/outcomes", json=body, headers=CASE)
    assert again.status_code == 200
    assert again.json()["changed"] is False and "nothing changed" in again.json()["detail"]
    assert store_state(store) == before
    conflict = client.post(
        "/v1/outcomes",
        json={"event_id": event_id, "status": "dropout", "weeks_observed": 2},
        headers=CASE,
    )
    assert conflict.status_code == 409 and conflict.headers["content-type"] == PROBLEM
    assert store_state(store) == before


def test_a_job_after_the_horizon_settles_zero(client):
    event_id = _backdated_event(client, 31)
    r = client.post(
        "/v1/outcomes",
        json={"event_id": event_id, "status": "employed", "weeks_to_job": 30},
        headers=CASE,
    )
    assert r.status_code == 200 and r.json()["reward"] == 0.0


def test_a_job_date_is_converted_to_weeks_since_the_decision(client):
    event_id = _backdated_event(client, 12)
    record = client.app.state.runtime.store.get_decision(event_id)
    day = datetime.fromtimestamp(record.timestamp, tz=UTC).date() + timedelta(days=70)
    r = client.post(
        "/v1/outcomes",
        json={"event_id": event_id, "status": "employed", "employed_on": day.isoformat()},
        headers=CASE,
    )
    assert r.status_code == 200, r.text
    stored = client.app.state.runtime.store.get_decision(event_id)
    assert stored.outcome.weeks_to_job == pytest.approx(10.0)


def test_a_dropout_is_censored_with_no_reward_and_learned_only_if_followed(client):
    """A dropout has no reward, but the weeks observed before it are data: the outcome of a
    followed recommendation goes to the learning queue; that of an overridden one does not."""
    store = client.app.state.runtime.store
    event_id = _backdated_event(client, 4)  # a dropout in week 3 is known 4 weeks on
    rec = store.get_decision(event_id).recommended
    r = client.post(
        f"/v1/decisions/{event_id}/assignment", json={"assigned_action_id": rec}, headers=CASE
    )
    assert r.status_code == 200 and store.learning_lag() == 1  # the followed assignment
    r = client.post(
        "/v1/outcomes",
        json={"event_id": event_id, "status": "dropout", "weeks_observed": 3},
        headers=CASE,
    )
    assert r.status_code == 200
    assert r.json()["reward"] is None and r.json()["censored"] is True
    assert store.get_decision(event_id).censored
    assert store.learning_lag() == 2  # the censored outcome is published too

    other_id = _backdated_event(client, 4, start=100)
    other_rec = store.get_decision(other_id).recommended
    r = client.post(
        f"/v1/decisions/{other_id}/assignment",
        json={
            "assigned_action_id": _other_eligible(client, other_id, other_rec),
            "reason_code": "capacity",
        },
        headers=CASE,
    )
    assert r.status_code == 200, r.text
    r = client.post(
        "/v1/outcomes",
        json={"event_id": other_id, "status": "dropout", "weeks_observed": 3},
        headers=CASE,
    )
    assert r.status_code == 200 and r.json()["censored"] is True
    assert store.learning_lag() == 2  # an overridden recommendation is never published


BAD_OUTCOMES = [
    ("unknown event", {"event_id": "nope", "status": "employed", "weeks_to_job": 1}, 404),
    ("missing status", {"event_id": "E", "weeks_to_job": 1}, 422),
    ("employed without weeks", {"event_id": "E", "status": "employed"}, 422),
    (
        "both weeks and date",
        {"event_id": "E", "status": "employed", "weeks_to_job": 1, "employed_on": "2030-01-01"},
        422,
    ),
    (
        "weeks for unemployed",
        {"event_id": "E", "status": "unemployed_at_horizon", "weeks_to_job": 1},
        422,
    ),
    ("dropout without weeks", {"event_id": "E", "status": "dropout"}, 422),
    ("negative weeks", {"event_id": "E", "status": "employed", "weeks_to_job": -1}, 422),
    ("string weeks", {"event_id": "E", "status": "employed", "weeks_to_job": "soon"}, 422),
    ("unknown status", {"event_id": "E", "status": "retired"}, 422),
    (
        "job before decision",
        {"event_id": "E", "status": "employed", "employed_on": "2000-01-01"},
        422,
    ),
    ("extra field", {"event_id": "E", "status": "unemployed_at_horizon", "note": "x"}, 422),
    ("not_reported is the sweep's", {"event_id": "E", "status": "not_reported"}, 422),
    ("unemployed before the horizon", {"event_id": "E", "status": "unemployed_at_horizon"}, 422),
    (
        "job date in the future",
        {
            "event_id": "E",
            "status": "employed",
            "employed_on": (datetime.now(tz=UTC).date() + timedelta(days=2)).isoformat(),
        },
        422,
    ),
]


@pytest.mark.parametrize(("name", "body", "status"), BAD_OUTCOMES, ids=[b[0] for b in BAD_OUTCOMES])
def test_bad_outcomes_are_refused_and_change_nothing(client, name, body, status):
    event_id, _ = _treatment_event(client)
    store = client.app.state.runtime.store
    before = store_state(store)
    payload = {**body, "event_id": event_id if body.get("event_id") == "E" else body["event_id"]}
    r = client.post("/v1/outcomes", json=payload, headers=CASE)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    assert store_state(store) == before


def test_nan_weeks_are_refused(client):
    event_id, _ = _treatment_event(client)
    raw = f'{{"event_id": "{event_id}", "status": "employed", "weeks_to_job": NaN}}'
    r = client.post(
        "/v1/outcomes", content=raw, headers={**CASE, "content-type": "application/json"}
    )
    assert r.status_code == 422
    assert client.app.state.runtime.store.get_decision(event_id).outcome is None


# ---------------------------------------------------------------------------- the sweep


def _backdated_event(client, weeks: float, start: int = 0) -> str:
    """A treatment decision made ``weeks`` ago (an API decision copied with an older time)."""
    store = client.app.state.runtime.store
    event_id, _ = _treatment_event(client, start)
    old = dataclasses.replace(
        store.get_decision(event_id),
        event_id=f"{event_id}old",
        timestamp=time.time() - weeks * WEEK_SECONDS,
    )
    store.put_decision(old, horizon_seconds=client.app.state.runtime.settings.horizon_seconds)
    return old.event_id


def test_the_clock_refuses_reports_it_contradicts_and_allows_them_later(client):
    """``unemployed_at_horizon`` only once the horizon has passed since the decision; a job date
    up to today; each refusal a 422 problem that changes nothing."""
    store = client.app.state.runtime.store
    horizon = client.app.state.runtime.settings.horizon_weeks
    young = _backdated_event(client, horizon - 0.5)
    before = store_state(store)
    r = client.post(
        "/v1/outcomes", json={"event_id": young, "status": "unemployed_at_horizon"}, headers=CASE
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert "horizon" in r.json()["detail"] and store_state(store) == before
    tomorrow = datetime.now(tz=UTC).date() + timedelta(days=1)
    r = client.post(
        "/v1/outcomes",
        json={"event_id": young, "status": "employed", "employed_on": tomorrow.isoformat()},
        headers=CASE,
    )
    assert r.status_code == 422 and "future" in r.json()["detail"]
    assert store_state(store) == before
    today = datetime.now(tz=UTC).date()
    r = client.post(
        "/v1/outcomes",
        json={"event_id": young, "status": "employed", "employed_on": today.isoformat()},
        headers=CASE,
    )
    assert r.status_code == 200, r.text
    old = _backdated_event(client, horizon + 0.5, start=300)
    r = client.post(
        "/v1/outcomes", json={"event_id": old, "status": "unemployed_at_horizon"}, headers=CASE
    )
    assert r.status_code == 200 and r.json()["reward"] == 0.0


_OUTCOME_METRICS = (
    "nbi_outcomes_received",
    "nbi_outcomes_settled",
    "nbi_reward_join_delay_seconds",
    "nbi_online_reward_estimate_ratio",
    "nbi_learner_updates",
    "nbi_model_updates",
)


def _outcome_metrics(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the metrics a settled outcome moves (not the error counters)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in client.app.state.runtime.metrics.registry.collect()
        if family.name.startswith(_OUTCOME_METRICS)
        for sample in family.samples
    }


def _followed_backdated_event(client, weeks: float, start: int) -> str:
    """A decision ``weeks`` old whose recommendation was followed: its outcome is learnable."""
    event_id = _backdated_event(client, weeks, start)
    rec = client.app.state.runtime.store.get_decision(event_id).recommended
    r = client.post(
        f"/v1/decisions/{event_id}/assignment", json={"assigned_action_id": rec}, headers=CASE
    )
    assert r.status_code == 200, r.text
    return event_id


LATER_THAN_TODAY = [
    # decided 3 weeks (21 days) ago: week 3 is today, anything from day 22 on is later
    ("job in week 27", 3, {"status": "employed", "weeks_to_job": 27}),
    ("job on day 22", 3, {"status": "employed", "weeks_to_job": 22 / 7}),
    ("dropout in week 25", 3, {"status": "dropout", "weeks_observed": 25}),
    ("dropout on day 22", 3, {"status": "dropout", "weeks_observed": 22 / 7}),
    # decided seconds ago (QA report): a job 6 weeks in the future, 0 weeks of reward
    ("job in week 6 at once", 0, {"status": "employed", "weeks_to_job": 6}),
    ("job in week 27 at once", 0, {"status": "employed", "weeks_to_job": 27}),
    ("dropout in week 25 at once", 0, {"status": "dropout", "weeks_observed": 25}),
]


@pytest.mark.parametrize(
    ("name", "age_weeks", "outcome"), LATER_THAN_TODAY, ids=[c[0] for c in LATER_THAN_TODAY]
)
def test_week_counts_later_than_today_are_refused_and_change_nothing(
    client, name, age_weeks, outcome
):
    """``weeks_to_job`` and ``weeks_observed`` follow the clock rule of ``employed_on``: the
    decision date + the weeks must not be after today (UTC). A refusal is a 422 problem naming
    the field; nothing is stored, nothing is published to the learner, no metric moves."""
    event_id = _followed_backdated_event(client, age_weeks, 0)
    store = client.app.state.runtime.store
    before, metrics = store_state(store), _outcome_metrics(client)
    assert store.learning_lag() == 1  # the followed assignment: an outcome would be published
    r = client.post("/v1/outcomes", json={"event_id": event_id, **outcome}, headers=CASE)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    field = "weeks_to_job" if outcome["status"] == "employed" else "weeks_observed"
    detail = r.json()["detail"]
    assert detail.startswith(f"{field}=") and "later than today" in detail, detail
    assert f"the decision was {7 * age_weeks} days" in detail, detail
    assert store_state(store) == before and _outcome_metrics(client) == metrics
    assert store.get_decision(event_id).outcome is None


WITHIN_TODAY = [
    ("job in week 3 after 3 weeks", 3, {"status": "employed", "weeks_to_job": 3}, 1.0),
    ("job in week 30 after 31 weeks", 31, {"status": "employed", "weeks_to_job": 30}, 0.0),
    ("dropout in week 3 after 3 weeks", 3, {"status": "dropout", "weeks_observed": 3}, None),
    ("job on the decision day", 0, {"status": "employed", "weeks_to_job": 0.1}, 1.0),
    ("dropout on the decision day", 0, {"status": "dropout", "weeks_observed": 0}, None),
]


@pytest.mark.parametrize(
    ("name", "age_weeks", "outcome", "reward"), WITHIN_TODAY, ids=[c[0] for c in WITHIN_TODAY]
)
def test_week_counts_up_to_today_are_accepted_and_learned(client, name, age_weeks, outcome, reward):
    event_id = _followed_backdated_event(client, age_weeks, 0)
    store = client.app.state.runtime.store
    metrics = _outcome_metrics(client)
    r = client.post("/v1/outcomes", json={"event_id": event_id, **outcome}, headers=CASE)
    assert r.status_code == 200, r.text
    assert (r.json()["reward"], r.json()["changed"]) == (reward, True)
    assert store.get_decision(event_id).outcome.status.value == outcome["status"]
    assert store.learning_lag() == 2  # published to the learner
    assert _outcome_metrics(client) != metrics


@pytest.mark.parametrize("days", [21, 22])
def test_week_counts_and_job_dates_meet_the_same_clock_rule(client, days):
    """A job ``days`` after the decision date of a decision 21 days old: ``weeks_to_job =
    days / 7`` and ``employed_on`` = decision date + ``days`` are both accepted or both
    refused (and both store the same weeks)."""
    store = client.app.state.runtime.store
    answers = []
    for start, form in ((0, "weeks"), (300, "date")):
        event_id = _backdated_event(client, 3, start)
        decided = datetime.fromtimestamp(store.get_decision(event_id).timestamp, tz=UTC).date()
        job = (
            {"weeks_to_job": days / 7}
            if form == "weeks"
            else {"employed_on": (decided + timedelta(days=days)).isoformat()}
        )
        r = client.post(
            "/v1/outcomes",
            json={"event_id": event_id, "status": "employed", **job},
            headers=CASE,
        )
        stored = store.get_decision(event_id).outcome
        answers.append((r.status_code, None if stored is None else stored.weeks_to_job))
    expected = (200, pytest.approx(days / 7)) if days <= 21 else (422, None)
    assert answers == [expected, expected]


def test_simulated_time_takes_week_counts_at_once(settings):
    """With ``simulated_time`` (the simulator's HTTP driver: weeks pass in seconds) the week
    counts are not checked against the clock."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(settings.model_copy(update={"simulated_time": True}))) as sim:
        for start, outcome in (
            (0, {"status": "employed", "weeks_to_job": 27}),
            (100, {"status": "dropout", "weeks_observed": 25}),
        ):
            event_id, _ = _treatment_event(sim, start)
            r = sim.post("/v1/outcomes", json={"event_id": event_id, **outcome}, headers=CASE)
            assert r.status_code == 200, r.text


def test_the_sweep_marks_not_reported_and_a_late_report_corrects_it(client):
    """The sweep's ``not_reported`` is reward 0 but no report of unemployment: a real report
    that arrives later is accepted as a correction (audited, counters corrected), once; a
    reported outcome is never overwritten by the sweep.

    The decisions are 21 weeks old (5 weeks before the 26-week horizon), so the reports below
    are facts the clock allows; the sweep's clock is moved past their horizon. The young API
    decisions they are copied from stay pending."""
    store = client.app.state.runtime.store
    horizon_weeks = client.app.state.runtime.settings.horizon_weeks
    events = [_backdated_event(client, horizon_weeks - 5, start) for start in (0, 100, 200)]
    client.post(
        "/v1/outcomes",
        json={"event_id": events[0], "status": "employed", "weeks_to_job": 2},
        headers=CASE,
    )
    assert sweep_expired(store, now=time.time() + 4 * WEEK_SECONDS) == 0  # nothing expired yet
    settled = sweep_expired(
        store, now=time.time() + 6 * WEEK_SECONDS, metrics=client.app.state.runtime.metrics
    )
    assert settled == 2
    for event_id in events[1:]:
        record = store.get_decision(event_id)
        assert record.reward == 0.0 and record.outcome.status.value == "not_reported"
    assert store.get_decision(events[0]).reward == 1.0
    assert store.pending_count() == 3  # the young API originals only
    assert sweep_expired(store, now=time.time() + 8 * WEEK_SECONDS) == 0  # idempotent
    counts = store.group_counts()["treatment"]
    assert (counts.settled, counts.employed) == (3, 1)
    assert store.corrections() == []

    late = {"event_id": events[1], "status": "employed", "weeks_to_job": 20}
    r = client.post("/v1/outcomes", json=late, headers=CASE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["reward"], body["changed"]) == ("employed", 1.0, True)
    assert "correction" in body["detail"]
    assert store.get_decision(events[1]).outcome.status.value == "employed"
    [entry] = store.corrections()
    assert (entry["event_id"], entry["previous"], entry["new"]) == (
        events[1],
        "not_reported",
        "employed",
    )
    counts = store.group_counts()["treatment"]
    assert (counts.settled, counts.employed) == (3, 2)  # settled once, now employed
    before = store_state(store)
    again = client.post("/v1/outcomes", json=late, headers=CASE)
    assert again.status_code == 200 and again.json()["changed"] is False
    received = _outcome_metrics(client)
    other = client.post(
        "/v1/outcomes",
        json={"event_id": events[1], "status": "dropout", "weeks_observed": 3},
        headers=CASE,
    )
    assert other.status_code == 409  # a reported outcome is final
    assert store_state(store) == before
    assert _outcome_metrics(client) == received  # a refused report is not counted received
    assert len(store.corrections()) == 1
    samples = client.app.state.runtime.metrics.registry
    assert (
        samples.get_sample_value(
            "nbi_outcomes_settled_total", {"result": "employed", "source": "correction"}
        )
        == 1
    )


def test_an_offer_whose_seats_are_assigned_is_excluded_for_capacity(client):
    runtime = client.app.state.runtime
    event_id, _ = _treatment_event(client)
    record = runtime.store.get_decision(event_id)
    full = next(a for a in record.eligible if runtime.catalog.get(a).capacity == 1)
    r = client.post(
        f"/v1/decisions/{event_id}/assignment",
        json={"assigned_action_id": full, "reason_code": "caseworker_judgement"},
        headers=CASE,
    )
    assert r.status_code == 200
    event2, _ = _treatment_event(client, start=700)
    second = runtime.store.get_decision(event2)
    assert full not in second.eligible and second.excluded[full] == "capacity"
    assert set(second.eligible) == set(record.eligible) - {full}
