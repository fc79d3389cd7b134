"""Model lifecycle through the real app, both stores: approval gate, rollback, shadow mode,
kill switch and change cap, with two app instances on one store as two workers."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bandit.catalog import default_catalog
from bandit.policies import policy_from_bytes
from service.app import create_app
from service.config import Settings
from service.runtime import fresh_policy
from service.store.base import ModelSnapshot
from tests.helpers.api import ADMIN, CASE, PROBLEM, RESEARCHER, rec_body
from tests.helpers.contexts import citizen

POLL = 1.0
"""Watcher poll interval of the workers (seconds)."""
SLACK = 0.5
"""Thread scheduling allowance on a loaded machine; well below a second poll interval."""

Workers = Callable[..., list[TestClient]]


@pytest.fixture(params=["sqlite", "redis"])
def base_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Manual approval, every citizen in treatment, worker learning (no learner thread)."""
    common: dict[str, Any] = {
        "policy": "vw",
        "delay_strategy": "at_once",
        "learning": "worker",
        "model_poll_seconds": POLL,
        "sweep_interval_seconds": 3600.0,
        "control_share": 0.0,
        "model_approval": "manual",
    }
    if request.param == "sqlite":
        return Settings(store="sqlite", sqlite_path=tmp_path / "nbi.sqlite3", **common)
    server = request.getfixturevalue("contract_redis_server")
    prefix = f"lc{uuid.uuid4().hex[:8]}:"
    return Settings(store="redis", redis_url=server.url, redis_prefix=prefix, **common)


@pytest.fixture
def workers(base_settings: Settings) -> Iterator[Workers]:
    """Start app instances on the same store (each one is a worker with its own watcher)."""
    with ExitStack() as stack:

        def start(n: int = 1, **update: Any) -> list[TestClient]:
            settings = base_settings.model_copy(update=update)
            return [stack.enter_context(TestClient(create_app(settings))) for _ in range(n)]

        yield start


def trained_snapshot(settings: Settings, updates: int) -> ModelSnapshot:
    """A candidate trained with the service's settings (rewarded: the first offer)."""
    policy = fresh_policy(settings)
    features = citizen().features()
    actions = [i.as_action() for i in default_catalog()]
    for i in range(updates):
        decision = policy.choose(features, actions, event_id=f"{i:032x}")
        policy.learn(decision, 1.0 if decision.chosen_action.id == actions[0].id else 0.0)
    return ModelSnapshot(policy.model_version, policy.to_bytes(), time.time())


def publish(client: TestClient, updates: int) -> str:
    """Publish a candidate as the learner does; its version."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    snapshot = trained_snapshot(runtime.settings, updates)
    runtime.store.save_model(snapshot)
    return snapshot.version


def serving(client: TestClient) -> tuple[str, str]:
    """(version, mode) serving on this worker."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime.policy.version, runtime.serving_mode


def wait_for(client: TestClient, want: Callable[[tuple[str, str]], bool]) -> float:
    """Seconds until ``want(serving(client))`` holds; fails after two poll intervals."""
    start = time.monotonic()
    while time.monotonic() - start < 2 * POLL + SLACK:
        if want(serving(client)):
            return time.monotonic() - start
        time.sleep(0.02)
    pytest.fail(f"worker still serves {serving(client)}")


def recommend(client: TestClient, n: int = 0) -> dict[str, Any]:
    r = client.post(
        "/v1/recommendations", json=rec_body(f"c-{uuid.uuid4().hex[:8]}-{n}"), headers=CASE
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["group"] == "treatment"
    return body


def record(client: TestClient, event_id: str) -> Any:
    return client.app.state.runtime.store.get_decision(event_id)  # type: ignore[attr-defined]


def test_candidate_serves_only_after_approval_on_every_worker(workers: Workers) -> None:
    a, b = workers(2)
    fresh_version = serving(a)[0]
    # Cold start: nothing approved, the fresh model runs in shadow on both workers.
    assert serving(a) == serving(b) == (fresh_version, "shadow")
    shadow = recommend(b)
    assert shadow["recommendation"] is None and shadow["options"] == []
    stored = record(b, shadow["event_id"])
    assert stored.mode == "shadow" and stored.recommended in stored.eligible
    assert len(stored.pmf) == len(stored.eligible) and abs(sum(stored.pmf) - 1) < 1e-9
    assert stored.propensity == stored.pmf[stored.eligible.index(stored.recommended)]

    candidate = publish(a, 30)
    time.sleep(2 * POLL + SLACK)  # more than two polls: still not served anywhere
    assert serving(a)[0] == serving(b)[0] == fresh_version
    (c,) = workers(1)  # a worker starting now does not pick the candidate either
    assert serving(c) == (fresh_version, "shadow")
    listed = a.get("/v1/models/versions", headers=RESEARCHER).json()
    assert listed["approved"] is None and listed["versions"][0]["approved"] is False

    r = a.post(f"/v1/models/{candidate}/approve", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["serving_version"] == candidate and serving(a) == (candidate, "live")
    elapsed = wait_for(b, lambda s: s == (candidate, "live"))
    assert elapsed <= POLL + SLACK
    wait_for(c, lambda s: s == (candidate, "live"))
    live = recommend(b, 1)
    assert live["recommendation"] is not None and live["model_version"] == candidate
    assert record(b, live["event_id"]).mode == "live"


def test_rollback_serves_the_chosen_version(workers: Workers) -> None:
    a, b = workers(2)
    v1 = publish(a, 10)
    assert a.post(f"/v1/models/{v1}/approve", headers=ADMIN).status_code == 200
    v2 = publish(a, 20)
    assert a.post(f"/v1/models/{v2}/approve", headers=ADMIN).status_code == 200
    wait_for(b, lambda s: s[0] == v2)
    v3 = publish(a, 25)  # a newer candidate exists; learning would continue on it
    r = b.post(f"/v1/models/{v1}/rollback", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["previous"] == v2 and serving(b)[0] == v1
    assert wait_for(a, lambda s: s[0] == v1) <= POLL + SLACK
    assert recommend(a)["model_version"] == v1
    assert a.get("/v1/models", headers=RESEARCHER).json()["latest_snapshot"] == v3
    # the reload form of a rollback (was {"reloaded": false} and kept the newest)
    r = a.post("/v1/models/reload", json={"version": v2}, headers=ADMIN)
    assert r.json() == {"reloaded": True, "model_version": v2}
    missing = a.post("/v1/models/vw-nope-1/rollback", headers=ADMIN)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert "not kept" in missing.json()["detail"]


def test_a_never_approved_candidate_goes_live_neither_by_rollback_nor_by_reload(
    workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    # QA report 1 (HIGH): manual approval and a change cap that refuses the candidate; the
    # rollback and the reload forms then put it live (200, approved and serving).
    (a,) = workers(1)
    for i in range(5):  # reference contexts for the cap (shadow at cold start)
        recommend(a, i)
    v1 = publish(a, 10)
    assert a.post(f"/v1/models/{v1}/approve", headers=ADMIN).status_code == 200
    (b,) = workers(1, change_cap=0.001)  # a second worker on the same store, with the cap
    v2 = publish(b, 40)
    refused = b.post(f"/v1/models/{v2}/approve", headers=ADMIN)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/change-cap")
    store = b.app.state.runtime.store  # type: ignore[attr-defined]
    control = store.get_control()
    v3 = publish(b, 5)  # a candidate nobody tried to approve: the same rule
    caplog.set_level(logging.INFO, logger="nbi.lifecycle")
    for client, candidate in ((b, v2), (a, v2), (b, v3)):
        for r in (
            client.post(f"/v1/models/{candidate}/rollback", headers=ADMIN),
            client.post("/v1/models/reload", json={"version": candidate}, headers=ADMIN),
        ):
            assert r.status_code == 409, r.text
            assert r.headers["content-type"] == PROBLEM
            problem = r.json()
            assert problem["type"].endswith("/conflict")
            assert problem["title"] == "Model version never approved"
            assert problem["detail"].startswith(f"Model version {candidate} was never approved;")
            assert f"POST /v1/models/{candidate}/approve" in problem["detail"]
    # nothing changed: the store's control values, what serves on both workers, the listing
    assert store.get_control() == control
    assert serving(a) == serving(b) == (v1, "live")
    time.sleep(POLL + SLACK)  # a poll later, still nothing
    assert serving(a) == serving(b) == (v1, "live")
    listed = a.get("/v1/models/versions", headers=ADMIN).json()
    assert listed["approved"] == v1
    flags = {v["version"]: (v["approved"], v["vetted"], v["serving"]) for v in listed["versions"]}
    assert flags == {
        v1: (True, True, True),
        v2: (False, False, False),
        v3: (False, False, False),
    }
    refusals = [r for r in caplog.records if getattr(r, "action", "") == "rollback_refused"]
    assert [r.target for r in refusals] == [v2] * 4 + [v3] * 2  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if getattr(r, "action", "") == "rollback"]
    # the OpenAPI text states the rule
    paths = a.get("/openapi.json").json()["paths"]
    rollback_op = paths["/v1/models/{version}/rollback"]["post"]
    assert "never approved" in rollback_op["description"]
    assert "never approved" in rollback_op["responses"]["409"]["description"]
    reload_op = paths["/v1/models/reload"]["post"]
    assert "approved before" in reload_op["description"] and "409" in reload_op["responses"]


def test_rollback_returns_to_any_version_approved_before_despite_the_cap(
    workers: Workers,
) -> None:
    (a,) = workers(1)
    for i in range(5):
        recommend(a, i)
    v1 = publish(a, 10)
    assert a.post(f"/v1/models/{v1}/approve", headers=ADMIN).status_code == 200
    v2 = publish(a, 40)
    assert a.post(f"/v1/models/{v2}/approve", headers=ADMIN).status_code == 200
    (b,) = workers(1, change_cap=0.001)
    # approved before: the rollback is exempt from the cap, both ways
    back = b.post(f"/v1/models/{v1}/rollback", headers=ADMIN)
    assert back.status_code == 200, back.text
    assert back.json()["serving_version"] == v1 and back.json()["previous"] == v2
    assert wait_for(a, lambda s: s[0] == v1) <= POLL + SLACK
    forth = b.post("/v1/models/reload", json={"version": v2}, headers=ADMIN)
    assert forth.json() == {"reloaded": True, "model_version": v2}
    # rolling back to the approved version itself is allowed (and changes nothing)
    assert b.post(f"/v1/models/{v2}/rollback", headers=ADMIN).json()["previous"] == v2
    listed = b.get("/v1/models/versions", headers=ADMIN).json()["versions"]
    assert {v["version"]: v["vetted"] for v in listed} == {v1: True, v2: True}


def test_a_store_from_before_the_markers_keeps_its_approved_version_as_rollback_target(
    workers: Workers,
) -> None:
    (a,) = workers(1)
    v1, v2 = publish(a, 10), publish(a, 20)
    store = a.app.state.runtime.store  # type: ignore[attr-defined]
    store.set_control({"approved": v1})  # as the lifecycle wrote it before the vetted markers
    assert a.post(f"/v1/models/{v2}/approve", headers=ADMIN).status_code == 200
    assert a.post(f"/v1/models/{v1}/rollback", headers=ADMIN).status_code == 200
    assert serving(a)[0] == v1


def test_auto_approval_keeps_earlier_auto_approved_versions_as_rollback_targets(
    workers: Workers,
) -> None:
    from service.lifecycle import lifecycle_store, on_candidate

    (a,) = workers(1, model_approval="auto", change_cap=0.001)
    runtime = a.app.state.runtime  # type: ignore[attr-defined]
    auto = runtime.settings
    store = lifecycle_store(runtime)
    v1, v2 = publish(a, 10), publish(a, 20)
    for version in (v1, v2):  # as the learner does on each commit (no reference contexts yet)
        assert on_candidate(store, auto, runtime.catalog, store.get_model(version))
    assert a.get("/v1/models/versions", headers=ADMIN).json()["approved"] == v2
    r = a.post(f"/v1/models/{v1}/rollback", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert serving(a)[0] == v1
    assert a.post("/v1/models/reload", json={"version": v2}, headers=ADMIN).status_code == 200
    assert serving(a)[0] == v2


def test_kill_switch_reaches_every_worker_within_one_poll(workers: Workers) -> None:
    a, b = workers(2)
    version = publish(a, 10)
    a.post(f"/v1/models/{version}/approve", headers=ADMIN)
    wait_for(b, lambda s: s == (version, "live"))
    assert recommend(b)["recommendation"] is not None
    r = a.post("/v1/models/kill", headers=ADMIN)
    assert r.status_code == 200 and r.json()["kill"] == "practice"
    assert serving(a)[1] == "practice"
    assert wait_for(b, lambda s: s[1] == "practice") <= POLL + SLACK
    killed = recommend(b, 1)
    assert killed["recommendation"] is None and killed["options"] == []
    stored = record(b, killed["event_id"])
    assert stored.mode == "practice" and stored.pmf == () and stored.recommended is None
    # the kill switch may serve shadow instead; release returns to the stored live mode
    a.post("/v1/models/kill", json={"serve": "shadow"}, headers=ADMIN)
    wait_for(b, lambda s: s[1] == "shadow")
    assert a.delete("/v1/models/kill", headers=ADMIN).json()["kill"] is None
    assert wait_for(b, lambda s: s == (version, "live")) <= POLL + SLACK


def test_shadow_mode_is_an_admin_action_followed_by_every_worker(workers: Workers) -> None:
    a, b = workers(2)
    version = publish(a, 10)
    a.post(f"/v1/models/{version}/approve", headers=ADMIN)
    r = a.put("/v1/models/mode", json={"mode": "shadow"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["mode"] == "shadow"
    assert wait_for(b, lambda s: s == (version, "shadow")) <= POLL + SLACK
    body = recommend(b)
    assert body["recommendation"] is None and body["options"] == []
    assert body["model_version"] == version  # the approved model decided, in the shadow
    stored = record(b, body["event_id"])
    assert stored.mode == "shadow" and len(stored.pmf) == len(stored.eligible) > 1
    bad = a.put("/v1/models/mode", json={"mode": "off"}, headers=ADMIN)
    assert bad.status_code == 422


def test_change_cap_refuses_a_large_update(workers: Workers) -> None:
    (a,) = workers(1, change_cap=0.05)
    for i in range(5):  # reference contexts: the recent decisions (shadow at cold start)
        recommend(a, i)
    candidate = publish(a, 40)
    r = a.post(f"/v1/models/{candidate}/approve", headers=ADMIN)
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["type"].endswith("/change-cap") and "NBI_CHANGE_CAP=0.05" in problem["detail"]
    assert "5 reference contexts" in problem["detail"]
    assert serving(a)[1] == "shadow"  # nothing approved, nothing changed
    assert a.get("/v1/models/versions", headers=ADMIN).json()["approved"] is None
    # the measured change is what the cap compares: a cap above it lets the approval pass
    change = float(problem["detail"].split("by ")[1].split(" ")[0])
    (b,) = workers(1, change_cap=min(1.0, change + 0.01))
    ok = b.post(f"/v1/models/{candidate}/approve", headers=ADMIN).json()
    assert ok["max_change"] == pytest.approx(change, abs=1e-3) and ok["reference_contexts"] == 5


def test_only_admins_change_the_lifecycle_and_openapi_documents_it(workers: Workers) -> None:
    (a,) = workers(1)
    version = publish(a, 5)
    for method, path in (
        ("post", f"/v1/models/{version}/approve"),
        ("post", f"/v1/models/{version}/rollback"),
        ("put", "/v1/models/mode"),
        ("post", "/v1/models/kill"),
        ("delete", "/v1/models/kill"),
        ("get", "/v1/models/compare"),
    ):
        for key in (CASE, RESEARCHER):
            assert getattr(a, method)(path, headers=key).status_code == 403, path
    assert a.get("/v1/models/versions", headers=ADMIN).json()["approved"] is None
    paths = a.get("/openapi.json").json()["paths"]
    for path, method in (
        ("/v1/models/{version}/approve", "post"),
        ("/v1/models/{version}/rollback", "post"),
        ("/v1/models/mode", "put"),
        ("/v1/models/kill", "post"),
        ("/v1/models/kill", "delete"),
        ("/v1/models/compare", "get"),
    ):
        op = paths[path][method]
        assert "Role: admin" in op["description"], path
        assert {"401", "403"} <= set(op["responses"]), path
    assert "409" in paths["/v1/models/{version}/approve"]["post"]["responses"]


def test_compare_evaluates_candidate_live_and_practice(workers: Workers) -> None:
    (a,) = workers(1)
    candidate = publish(a, 10)
    report = a.get("/v1/models/compare", headers=ADMIN).json()
    names = [row["name"] for row in report["rows"]]
    assert names == ["candidate", "live", "practice as usual"]
    assert report["rows"][0]["version"] == candidate
    assert report["logged_decisions"] == 0 and report["rows"][0]["snips"] is None
    assert a.get("/v1/models/compare?candidate=vw-x-1", headers=ADMIN).status_code == 404
    restored = policy_from_bytes(a.app.state.runtime.store.get_model(candidate).data)  # type: ignore[attr-defined]
    assert restored.model_version == candidate


def _logged_decisions(client: TestClient, n: int) -> tuple[int, list[float]]:
    """``n`` decisions through the API, assigned and settled; (treatment count, control
    rewards)."""
    treated, control = 0, []
    for i in range(n):
        body = client.post("/v1/recommendations", json=rec_body(f"lc-{i:04d}"), headers=CASE).json()
        stored = record(client, body["event_id"])
        assigned = stored.recommended or stored.eligible[0]
        client.post(
            f"/v1/decisions/{body['event_id']}/assignment",
            json={"assigned_action_id": assigned},
            headers=CASE,
        )
        employed = i % 3 != 0
        outcome = (
            {"status": "employed", "weeks_to_job": 4}
            if employed
            else {"status": "unemployed_at_horizon"}
        )
        r = client.post(
            "/v1/outcomes", json={"event_id": body["event_id"], **outcome}, headers=CASE
        )
        assert r.status_code == 200, r.text
        if body["group"] == "treatment":
            treated += 1
        else:
            control.append(1.0 if employed else 0.0)
    return treated, control


def test_compare_and_guardrail_on_logged_decisions(
    workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.lifecycle import lifecycle_store, on_candidate
    from service.model_compare import guardrail

    # Fixed event ids: the offer each decision samples, and so the importance weights behind
    # the bounds below, follow from them (random ids made the wide-bounds check fail in about
    # 1 run of 7 once the policy's exploration got greedier).
    ids = iter(uuid.UUID(int=i) for i in range(1, 10_000))
    monkeypatch.setattr(uuid, "uuid4", lambda: next(ids))
    (a,) = workers(1, control_share=0.4, simulated_time=True)
    v1 = publish(a, 10)
    a.post(f"/v1/models/{v1}/approve", headers=ADMIN)
    treated, control = _logged_decisions(a, 32)
    assert treated >= 10 and len(control) >= 10
    report = a.get(f"/v1/models/compare?candidate={v1}", headers=ADMIN).json()
    cand, live, practice = report["rows"]
    assert report["logged_decisions"] == treated == cand["n"] == live["n"]
    # the candidate is the live model here: the same estimates
    for key in ("snips", "snips_low", "dr", "dr_high", "ess"):
        assert cand[key] == pytest.approx(live[key])
    assert cand["snips_low"] < cand["snips"] < cand["snips_high"]
    assert 0 < cand["ess"] <= treated + 1e-9  # = n when the weights are all 1
    assert practice["snips"] == pytest.approx(sum(control) / len(control))
    from service.summary import wilson

    low, high = wilson(int(sum(control)), len(control))
    assert (practice["snips_low"], practice["snips_high"]) == pytest.approx((low, high))
    for row in (cand, live, practice):  # employment shares: every value and bound in [0, 1]
        for key in ("snips", "snips_low", "snips_high", "dr", "dr_low", "dr_high"):
            assert 0.0 <= row[key] <= 1.0, (row["name"], key, row[key])
    runtime = a.app.state.runtime  # type: ignore[attr-defined]
    store = lifecycle_store(runtime)
    strict = runtime.settings.model_copy(update={"guardrail_margin": 0.0})
    verdict = guardrail(store, strict, runtime.catalog, v1)
    assert not verdict.passed and "lower bound" in verdict.reason  # a lower bound < estimate
    v2 = publish(a, 12)
    loose = runtime.settings.model_copy(
        update={"guardrail_margin": 100.0, "model_approval": "guardrail"}
    )
    assert guardrail(store, loose, runtime.catalog, v2).passed  # bounds are wide on few rows
    assert on_candidate(store, loose, runtime.catalog, store.get_model(v2))
    assert wait_for(a, lambda s: s[0] == v2) <= POLL + SLACK


def test_practice_interval_keeps_its_width_when_every_outcome_is_alike() -> None:
    """21 of 21 employed: the normal interval was [1, 1]; Wilson's is about [0.85, 1]."""
    from types import SimpleNamespace

    from offline_eval.ci import Estimate
    from service.model_compare import _practice_row, within_rewards

    row = _practice_row([SimpleNamespace(reward=1.0)] * 21)  # type: ignore[list-item]
    assert row.snips is not None and row.snips.value == 1.0
    assert row.snips.ci_low == pytest.approx(0.8454, abs=1e-4) and row.snips.ci_high == 1.0
    clipped = within_rewards(Estimate(1.07, -27.7, 29.5, 91))
    assert (clipped.value, clipped.ci_low, clipped.ci_high) == (1.0, 0.0, 1.0)


def test_cli_lists_approves_compares_and_refuses(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from service.store.sqlite_store import SQLiteStore

    nbi = str(Path(sys.executable).with_name("nbi"))
    db = tmp_path / "nbi.sqlite3"
    env = {
        **os.environ,
        "NBI_SQLITE_PATH": str(db),
        "NBI_POLICY": "vw",
        "NBI_DELAY_STRATEGY": "at_once",
    }
    settings = Settings(sqlite_path=db, policy="vw", delay_strategy="at_once")
    with TestClient(create_app(settings.model_copy(update={"control_share": 0.0}))) as c:
        for i in range(3):  # reference contexts for the cap
            recommend(c, i)
    store = SQLiteStore(db)
    v1, v2 = (trained_snapshot(settings, n) for n in (10, 40))
    store.save_model(v1)
    store.save_model(v2)
    store.close()

    def nbi_run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [nbi, "models", *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    listed = nbi_run("list")
    assert listed.returncode == 0, listed.stderr
    assert (
        "approved: none (cold start)" in listed.stdout
        and f"candidate  {v2.version}" in listed.stdout
    )
    ok = nbi_run("approve", v1.version)
    assert ok.returncode == 0 and f"approved {v1.version}" in ok.stdout
    refused = nbi_run("approve", v2.version, NBI_CHANGE_CAP="0.001")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 1
    assert lines[0].startswith("error: Approving") and "NBI_CHANGE_CAP=0.001" in lines[0]
    assert f"approved   {v1.version}" in nbi_run("list").stdout  # unchanged
    # the refused candidate cannot go live by a rollback either: one line, exit 1, no change
    sneaked = nbi_run("rollback", v2.version, NBI_CHANGE_CAP="0.001")
    lines = sneaked.stderr.strip().splitlines()
    assert sneaked.returncode == 1 and len(lines) == 1, sneaked.stderr
    assert lines[0].startswith(f"error: Model version {v2.version} was never approved;")
    assert f"nbi models approve {v2.version}" in lines[0]
    listed = nbi_run("list").stdout
    assert f"approved   {v1.version}" in listed and f"candidate  {v2.version}" in listed
    assert nbi_run("approve", v2.version).returncode == 0
    assert f"vetted     {v1.version}" in nbi_run("list").stdout  # a rollback target
    back = nbi_run("rollback", v1.version)
    assert back.returncode == 0 and f"rolled back to {v1.version}; was {v2.version}" in back.stdout
    unknown = nbi_run("rollback", "vw-none-1")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: Model version")
    plot = tmp_path / "compare.png"
    compared = nbi_run("compare", "--plot", str(plot))
    assert compared.returncode == 0, compared.stderr
    assert compared.stdout.splitlines()[0].split()[:3] == ["policy", "version", "SNIPS"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert nbi_run("kill").stdout.strip() == "kill switch on: serving practice"
    assert "kill switch: practice" in nbi_run("list").stdout
    assert nbi_run("mode", "sideways").returncode == 1
    # the command line's lifecycle actions are in the audit trail like the API's: the key's
    # id and role, or the machine's operator; a key of another role changes nothing
    wrong = nbi_run("release", "--api-key", "dev-case-key")
    assert wrong.returncode == 2 and wrong.stderr.strip().splitlines() == [
        "error: this action needs an admin key (or none: the machine's operator)"
    ]
    assert "kill switch: practice" in nbi_run("list").stdout  # still on
    assert nbi_run("release", "--api-key", "dev-admin-key").returncode == 0
    from service.audit import open_audit_trail
    from service.auth import identify

    admin_id = identify("dev-admin-key", settings.api_keys)
    assert admin_id is not None
    trail = open_audit_trail(settings)
    try:
        cli = [e for e in trail.entries() if (e.detail or {}).get("via") == "cli"]
        assert trail.verify().ok
    finally:
        trail.close()
    assert [(e.action, e.target, e.actor, e.role) for e in cli] == [
        ("approve", v1.version, "operator", "operator"),
        ("approve", v2.version, "operator", "operator"),
        ("rollback", v1.version, "operator", "operator"),
        ("kill_switch", "deployment", "operator", "operator"),
        ("kill_switch_release", "deployment", admin_id[1], "admin"),
    ]
    assert cli[2].detail["previous"] == v2.version


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_store_keeps_the_approved_version_beyond_model_keep(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        from service.store.sqlite_store import SQLiteStore

        store: Any = SQLiteStore(tmp_path / "s.sqlite3", keep_models=2)
    else:
        from service.store.redis_store import RedisStore

        server = request.getfixturevalue("contract_redis_server")
        store = RedisStore(server.url, prefix=f"k{uuid.uuid4().hex[:8]}:", keep_models=2)
    try:
        for i in range(1, 6):
            store.save_model(ModelSnapshot(f"v{i}", b"x" * i, float(i)))
            if i == 2:
                store.set_control({"approved": "v2", "mode": "shadow"})
        assert [v for v, _ in store.model_versions()] == ["v5", "v4", "v2"]
        assert store.get_model("v2") == ModelSnapshot("v2", b"xx", 2.0)
        assert store.get_model("v1") is None and store.get_model("v3") is None
        store.set_control({"approved": "v5", "mode": None})
        assert store.get_control() == {"approved": "v5"}
        store.save_model(ModelSnapshot("v6", b"y", 6.0))
        assert [v for v, _ in store.model_versions()] == ["v6", "v5"]  # v2 no longer protected
    finally:
        store.close()


def test_admin_actions_are_in_the_audit_trail_with_the_key_id(
    workers: Workers, base_settings: Settings
) -> None:
    from service.audit import AuditTrail, open_audit_log
    from service.config import hash_api_key

    (a,) = workers(1)
    v1 = publish(a, 10)
    assert a.post(f"/v1/models/{v1}/approve", headers=ADMIN).status_code == 200
    v2 = publish(a, 20)
    assert a.post(f"/v1/models/{v2}/approve", headers=ADMIN).status_code == 200
    assert a.post(f"/v1/models/{v1}/rollback", headers=ADMIN).status_code == 200
    assert a.put("/v1/models/mode", json={"mode": "shadow"}, headers=ADMIN).status_code == 200
    assert a.post("/v1/models/kill", headers=ADMIN).status_code == 200
    assert a.delete("/v1/models/kill", headers=ADMIN).status_code == 200
    trail = AuditTrail(open_audit_log(base_settings))
    admin = [e for e in trail.entries() if e.role == "admin"]
    trail.close()
    assert [(e.action, e.target) for e in admin] == [
        ("approve", v1),
        ("approve", v2),
        ("rollback", v1),
        ("mode", "shadow"),
        ("kill_switch", "deployment"),
        ("kill_switch_release", "deployment"),
    ]
    key_id = "k_" + hash_api_key(ADMIN["X-API-Key"])[:12]
    assert {e.actor for e in admin} == {key_id}
    assert admin[1].detail["previous"] == v1 and admin[2].detail["previous"] == v2
