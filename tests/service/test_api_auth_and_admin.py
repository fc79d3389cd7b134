"""Roles (401/403), experiment summary, models, reload, health and readiness."""

from __future__ import annotations

import pytest

from bandit.policies import make_policy
from service.store.base import ModelSnapshot
from tests.helpers.api import ADMIN, CASE, METRICS, PROBLEM, RESEARCHER, citizen_in_group, rec_body

ROUTES = [
    ("post", "/v1/recommendations", {"case", "admin"}),
    ("post", "/v1/decisions/e1/assignment", {"case", "admin"}),
    ("post", "/v1/outcomes", {"case", "admin"}),
    ("get", "/v1/experiment/summary", {"researcher", "admin"}),
    ("get", "/v1/models", {"case", "researcher", "admin"}),
    ("post", "/v1/models/reload", {"admin"}),
    ("get", "/metrics", {"metrics", "admin"}),
]
KEYS = {"case": CASE, "researcher": RESEARCHER, "admin": ADMIN, "metrics": METRICS}


@pytest.mark.parametrize(("method", "path", "allowed"), ROUTES)
def test_no_key_is_401_wrong_role_is_403(client, method, path, allowed):
    call = getattr(client, method)
    kwargs = {"json": {}} if method == "post" else {}
    none = call(path, **kwargs)
    assert none.status_code == 401 and none.headers["content-type"] == PROBLEM
    assert none.headers["www-authenticate"] == "Bearer"
    bad = call(path, headers={"X-API-Key": "not-a-key"}, **kwargs)
    assert bad.status_code == 401
    for role, headers in KEYS.items():
        r = call(path, headers=headers, **kwargs)
        if role in allowed:
            assert r.status_code not in (401, 403), (role, r.text)
        else:
            assert r.status_code == 403 and r.headers["content-type"] == PROBLEM, role


def test_health_needs_no_key_and_readiness_checks_the_store(client):
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": True, "policy": True, "persistence": True}


def test_readiness_fails_when_the_store_is_gone(settings):
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(settings)) as c:
        c.app.state.runtime.store.close()
        r = c.get("/readyz")
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
        c.app.state.runtime.store = type(c.app.state.runtime.store)(settings.sqlite_path)


def test_experiment_summary_counts_arms_and_rates(settings):
    """Counters and rates through the API. Week counts seconds after the decision are facts
    only in simulated time (in real time they are later than today: 422), where every settled
    outcome counts for the analysis; the analysis in information time (real time) is tested in
    test_summary_information_time.py."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(settings.model_copy(update={"simulated_time": True}))) as client:
        events: dict[str, list[str]] = {"treatment": [], "control": []}
        for group in events:
            for k in range(3):
                raw = citizen_in_group(client, group, start=1000 * (k + 1))
                body = client.post("/v1/recommendations", json=rec_body(raw), headers=CASE).json()
                events[group].append(body["event_id"])
        outcomes = {
            events["treatment"][0]: {"status": "employed", "weeks_to_job": 3},
            events["treatment"][1]: {"status": "employed", "weeks_to_job": 8},
            events["treatment"][2]: {"status": "dropout", "weeks_observed": 2},
            events["control"][0]: {"status": "employed", "weeks_to_job": 5},
            events["control"][1]: {"status": "employed", "weeks_to_job": 30},  # after the horizon
        }
        for event_id, outcome in outcomes.items():
            r = client.post("/v1/outcomes", json={"event_id": event_id, **outcome}, headers=CASE)
            assert r.status_code == 200, r.text
        s = client.get("/v1/experiment/summary", headers=RESEARCHER).json()
    t, c = s["treatment"], s["control"]
    assert (t["decisions"], t["settled"], t["censored"], t["employed"]) == (3, 3, 1, 2)
    assert (c["decisions"], c["settled"], c["censored"], c["employed"]) == (3, 2, 0, 1)
    # Simulated time: every settled, uncensored outcome is analysed; the unreported one waits.
    assert (t["analysed"], t["analysed_employed"], t["pending"]) == (2, 2, 0)
    assert (c["analysed"], c["analysed_employed"], c["pending"]) == (2, 1, 1)
    assert t["employment_rate"] == 1.0 and c["employment_rate"] == 0.5
    assert s["difference"] == pytest.approx(0.5)
    assert s["report_lag_weeks"] == 0 and "simulated time" in s["note"]
    assert s["control_share"] == 0.2 and s["experiment"].startswith("nbi-rct:0.2:")


def test_models_and_reload_swap_in_the_newest_snapshot(client):
    info = client.get("/v1/models", headers=ADMIN).json()
    assert (
        info["policy"] == "vw" and info["catalog_size"] == 330 and info["latest_snapshot"] is None
    )
    assert client.post("/v1/models/reload", headers=ADMIN).json()["reloaded"] is False
    trained = make_policy("vw", floor=0.02, seed=0)
    trained.n_updates = 7
    client.app.state.runtime.store.save_model(ModelSnapshot("vw-test-7", trained.to_bytes(), 1.0))
    r = client.post("/v1/models/reload", headers=ADMIN).json()
    assert r == {"reloaded": True, "model_version": "vw-test-7"}
    info = client.get("/v1/models", headers=RESEARCHER).json()
    assert info["model_version"] == "vw-test-7" and info["updates"] == 7
    raw = citizen_in_group(client, "treatment")
    body = client.post("/v1/recommendations", json=rec_body(raw), headers=CASE).json()
    assert body["model_version"] == trained.model_version


def test_unknown_routes_and_methods_are_problem_json(client):
    r = client.get("/v1/nothing", headers=CASE)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = client.get("/v1/outcomes", headers=CASE)
    assert r.status_code == 405 and r.headers["content-type"] == PROBLEM
