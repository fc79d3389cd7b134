"""Cluster randomisation through the real app: the arm per caseworker or job centre."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from bandit.privacy import pseudonymise_cluster
from service.app import create_app
from service.config import Settings
from tests.helpers.api import CASE, PROBLEM, rec_body


def _client(settings: Any, **update: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update=update))) as c:
        yield c


@pytest.fixture
def caseworker_client(settings: Any) -> Iterator[TestClient]:
    """The app randomising by caseworker (no roster: a coin per caseworker)."""
    yield from _client(settings, control_unit="caseworker")


def test_missing_cluster_id_is_a_problem_json_422(caseworker_client):
    r = caseworker_client.post("/v1/recommendations", json=rec_body("c-1"), headers=CASE)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "caseworker_id" in r.json()["detail"]
    # the job centre does not stand in for the caseworker
    body = rec_body("c-1", jobcentre_id="JC-1")
    assert caseworker_client.post("/v1/recommendations", json=body, headers=CASE).status_code == 422


def test_citizens_of_one_caseworker_share_the_arm_and_the_record_keeps_the_cluster(
    caseworker_client,
):
    runtime = caseworker_client.app.state.runtime
    key = runtime.settings.pseudonym_key_bytes()
    for caseworker in ("CW-1", "CW-2", "CW-3", "CW-4"):
        groups = set()
        for i in range(6):
            body = rec_body(f"{caseworker}-citizen-{i}", caseworker_id=caseworker)
            r = caseworker_client.post("/v1/recommendations", json=body, headers=CASE)
            assert r.status_code == 200, r.text
            groups.add(r.json()["group"])
            stored = runtime.store.get_decision(r.json()["event_id"])
            assert stored.cluster_key == pseudonymise_cluster(caseworker, key, "caseworker")
            assert stored.experiment.endswith(":caseworker")
            assert caseworker not in stored.cluster_key
        assert len(groups) == 1


def test_roster_assigns_the_exact_share_of_job_centres(settings):
    centres = [f"JC-{i}" for i in range(10)]
    for client in _client(settings, control_unit="jobcentre", control_clusters=centres):
        groups = {}
        for centre in centres:
            body = rec_body(f"citizen-of-{centre}", jobcentre_id=centre)
            r = client.post("/v1/recommendations", json=body, headers=CASE)
            assert r.status_code == 200, r.text
            groups[centre] = r.json()["group"]
        assert sum(g == "control" for g in groups.values()) == 2  # round(0.2 x 10)


def test_per_citizen_stays_the_default_and_ignores_cluster_ids(client):
    r = client.post("/v1/recommendations", json=rec_body("c-9", caseworker_id="CW-1"), headers=CASE)
    assert r.status_code == 200, r.text
    stored = client.app.state.runtime.store.get_decision(r.json()["event_id"])
    assert stored.cluster_key is None and not stored.experiment.endswith("caseworker")


def test_cpr_shaped_cluster_id_is_refused(caseworker_client):
    body = rec_body("c-1", caseworker_id="010190-1234")
    r = caseworker_client.post("/v1/recommendations", json=body, headers=CASE)
    assert r.status_code == 422 and "010190" not in r.text


def test_settings_validate_unit_and_roster(monkeypatch):
    with pytest.raises(ValidationError, match="control_unit"):
        Settings(control_unit="school")
    with pytest.raises(ValidationError, match="needs control_unit caseworker or jobcentre"):
        Settings(control_clusters=["JC-1", "JC-2"])
    with pytest.raises(ValidationError, match="distinct"):
        Settings(control_unit="jobcentre", control_clusters=["JC-1", "JC-1", "JC-2"])
    with pytest.raises(ValidationError, match="leaves an arm without clusters"):
        Settings(control_unit="jobcentre", control_clusters=["JC-1", "JC-2"])
    monkeypatch.setenv("NBI_CONTROL_UNIT", "jobcentre")
    monkeypatch.setenv("NBI_CONTROL_CLUSTERS", '["JC-1", "JC-2", "JC-3", "JC-4", "JC-5"]')
    s = Settings()
    assert s.control_unit == "jobcentre" and len(s.control_cluster_keys()) == 5
