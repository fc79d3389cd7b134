"""Issue 11.6: seat capacity in the shared store (SQLite and Redis), through the real app.

Two app instances on one store stand for two workers; a new instance on the same store for a
restart. Before the fix the counts were per process and in memory: the second worker offered
seats the first had given away, a restart reset them, and an assignment beyond capacity or to an
offer the citizen may not have passed silently.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from bandit.catalog import CAPACITY_TIMEZONE, capacity_week, load_catalog
from service.app import create_app
from service.capacity import CapacityTracker, SeatLedger, open_seat_ledger
from tests.helpers.api import CASE, METRICS, citizen_in_group, context, rec_body

CATALOG = """id,name,family,length_weeks,capacity,target_groups
STD,Standard contact,standard_contact,1,,
SEAT1,Mentor,mentor,4,1,
COURSE2,Job search course,job_search_course,2,2,
DP_ONLY,Dagpenge course,job_search_course,2,,dagpenge
"""


@pytest.fixture(params=["sqlite", "redis"])
def cfg(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    from service.config import Settings

    path = tmp_path / "catalog.csv"
    path.write_text(CATALOG)
    base = Settings(
        _env_file=None,
        sqlite_path=tmp_path / "nbi.sqlite3",
        catalog_path=path,
        policy="uniform",
        learning="worker",
        model_poll_seconds=3600.0,
        sweep_interval_seconds=3600.0,
        monitor_interval_seconds=3600.0,
    )
    if request.param == "redis":
        server = request.getfixturevalue("contract_redis_server")
        prefix = f"cap{uuid.uuid4().hex[:8]}:"
        base = base.model_copy(
            update={"store": "redis", "redis_url": server.url, "redis_prefix": prefix}
        )
    return base


@pytest.fixture
def workers(cfg: Any) -> Iterator[tuple[TestClient, TestClient]]:
    """Two app instances on one store: two workers."""
    with ExitStack() as stack:
        a = stack.enter_context(TestClient(create_app(cfg)))
        b = stack.enter_context(TestClient(create_app(cfg)))
        yield a, b


def _decide(client: TestClient, raw: str, **ctx: Any) -> dict[str, Any]:
    r = client.post("/v1/recommendations", json=rec_body(raw, context=context(**ctx)), headers=CASE)
    assert r.status_code == 200, r.text
    record = client.app.state.runtime.store.get_decision(r.json()["event_id"])  # type: ignore[attr-defined]
    return {
        "event_id": record.event_id,
        "eligible": set(record.eligible),
        "excluded": record.excluded,
    }


def _assign(client: TestClient, event_id: str, action_id: str) -> dict[str, Any]:
    r = client.post(
        f"/v1/decisions/{event_id}/assignment",
        json={"assigned_action_id": action_id, "reason_code": "caseworker_judgement"},
        headers=CASE,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _flagged(client: TestClient, reason: str) -> float:
    registry = client.app.state.runtime.metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value("nbi_assignments_flagged_total", {"reason": reason})
    return float(value or 0.0)


def test_two_workers_give_the_same_eligible_set(workers: tuple[TestClient, TestClient]) -> None:
    a, b = workers
    raw = citizen_in_group(a, "treatment")
    assert (
        _decide(a, raw)["eligible"]
        == _decide(b, raw)["eligible"]
        == {
            "STD",
            "SEAT1",
            "COURSE2",
            "DP_ONLY",
        }
    )
    first = _decide(a, raw)
    assert _assign(a, first["event_id"], "SEAT1")["warnings"] == []
    second = _decide(b, raw)
    assert _assign(b, second["event_id"], "COURSE2")["warnings"] == []
    seen_a, seen_b = _decide(a, raw), _decide(b, raw)
    # the seat worker a gave away is gone for worker b too; COURSE2 has one seat left
    assert seen_a["eligible"] == seen_b["eligible"] == {"STD", "COURSE2", "DP_ONLY"}
    assert seen_a["excluded"]["SEAT1"] == seen_b["excluded"]["SEAT1"] == "capacity"
    _assign(a, seen_a["event_id"], "COURSE2")
    assert _decide(b, raw)["eligible"] == _decide(a, raw)["eligible"] == {"STD", "DP_ONLY"}


def test_capacity_survives_a_restart_and_over_capacity_is_flagged(cfg: Any) -> None:
    with TestClient(create_app(cfg)) as first:
        raw = citizen_in_group(first, "treatment")
        events = [_decide(first, raw)["event_id"] for _ in range(3)]
        _assign(first, events[0], "COURSE2")
        _assign(first, events[1], "COURSE2")
    with TestClient(create_app(cfg)) as restarted:
        after = _decide(restarted, raw)
        assert after["eligible"] == {"STD", "SEAT1", "DP_ONLY"}
        assert after["excluded"]["COURSE2"] == "capacity"
        # a third assignment to the 2-seat offer: accepted, flagged, counted once
        third = _assign(restarted, events[2], "COURSE2")
        assert third["changed"] is True
        assert [w["code"] for w in third["warnings"]] == ["over_capacity"]
        assert "2 seats" in third["warnings"][0]["detail"]
        assert "assignment 3" in third["warnings"][0]["detail"]
        assert "COURSE2" not in third["warnings"][0]["detail"]
        again = _assign(restarted, events[2], "COURSE2")  # a client retry
        assert again["changed"] is False and again["warnings"] == third["warnings"]
        assert _flagged(restarted, "over_capacity") == 1.0
        assert _flagged(restarted, "ineligible") == 0.0
        scraped = restarted.get("/metrics", headers=METRICS).text
        assert 'nbi_assignments_flagged_total{reason="over_capacity"} 1.0' in scraped
        # the retry did not take a fourth seat
        ledger = restarted.app.state.runtime.capacity  # type: ignore[attr-defined]
        assert ledger.seats_left()["COURSE2"] == -1


def test_an_ineligible_assignment_is_accepted_and_flagged(cfg: Any) -> None:
    with TestClient(create_app(cfg)) as client:
        raw = citizen_in_group(client, "treatment")
        kontant = _decide(client, raw, target_group="kontanthjaelp")
        assert kontant["excluded"]["DP_ONLY"] == "target_group"
        body = _assign(client, kontant["event_id"], "DP_ONLY")
        assert [w["code"] for w in body["warnings"]] == ["ineligible"]
        assert "target_group" in body["warnings"][0]["detail"]
        assert "DP_ONLY" not in body["warnings"][0]["detail"]
        assert (
            client.app.state.runtime.store.get_decision(kontant["event_id"]).assigned == "DP_ONLY"
        )  # type: ignore[attr-defined]
        _assign(client, kontant["event_id"], "DP_ONLY")  # a retry: warned again, counted once
        dagpenge = _decide(client, raw)
        assert _assign(client, dagpenge["event_id"], "DP_ONLY")["warnings"] == []
        assert _flagged(client, "ineligible") == 1.0
        assert _flagged(client, "over_capacity") == 0.0


def _ledger(cfg: Any) -> SeatLedger:
    return open_seat_ledger(cfg)


def test_seats_reset_at_the_catalogs_capacity_week(cfg: Any) -> None:
    tz = ZoneInfo(CAPACITY_TIMEZONE)
    sunday = datetime(2026, 6, 7, 23, 59, 59, tzinfo=tz).timestamp()  # Monday 8 June: W24
    now = [sunday]
    catalog = load_catalog(cfg.catalog_path)
    tracker = CapacityTracker(catalog, _ledger(cfg), clock=lambda: now[0])
    try:
        assert tracker.week() == "2026-W23"
        assert tracker.take("e1", "SEAT1").over is False  # type: ignore[union-attr]
        assert tracker.take("e2", "SEAT1").over is True  # type: ignore[union-attr]
        assert tracker.take("e3", "STD") is None  # no capacity, nothing counted
        assert tracker.seats_left() == {"SEAT1": -1, "COURSE2": 2}
        now[0] = sunday + 1.0  # Monday 00:00 in Copenhagen
        assert tracker.week() == capacity_week(now[0]) == "2026-W24"
        assert tracker.seats_left() == {"SEAT1": 1, "COURSE2": 2}
        # a retry of last week's assignment is not counted again in the new week
        late = tracker.take("e1", "SEAT1")
        assert late is not None and late.new is False and late.ordinal == 1
        assert tracker.seats_left()["SEAT1"] == 1
    finally:
        tracker.close()


def test_concurrent_takes_count_every_seat_once(cfg: Any) -> None:
    """Eight ledgers (connections, as eight workers), 80 assignments at once, 10 retried."""
    ledgers = [_ledger(cfg) for _ in range(8)]
    results: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        ledger = ledgers[i]
        for j in range(10):
            take = ledger.take(f"w{i}e{j}", "COURSE2", "2026-W10", 2)
            if j == 0:  # a retry from another worker
                assert ledgers[(i + 1) % 8].take(f"w{i}e{j}", "COURSE2", "2026-W10", 2) == (
                    type(take)(take.ordinal, 2, new=False)
                )
            with lock:
                results.append(take.ordinal)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == list(range(1, 81))
        assert ledgers[0].taken("2026-W10") == {"COURSE2": 80}
        assert ledgers[0].taken("2026-W11") == {}
    finally:
        for ledger in ledgers:
            ledger.close()
