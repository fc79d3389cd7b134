"""Builders and inspectors for the service API tests."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from service.store.base import DecisionStore

CASE = {"X-API-Key": "dev-case-key"}
RESEARCHER = {"X-API-Key": "dev-researcher-key"}
ADMIN = {"X-API-Key": "dev-admin-key"}
METRICS = {"Authorization": "Bearer dev-metrics-key"}
PROBLEM = "application/problem+json"
CPR = "010190-1234"


def context(**overrides: Any) -> dict[str, Any]:
    """A valid citizen context as JSON."""
    data: dict[str, Any] = {
        "target_group": "dagpenge",
        "age": 35,
        "education": "vocational",
        "weeks_unemployed": 30,
        "last_sector": "construction",
        "cv_tokens": ["welding"],
    }
    data.update(overrides)
    return data


def rec_body(citizen_id: str = CPR, **overrides: Any) -> dict[str, Any]:
    """A valid recommendation request body."""
    body: dict[str, Any] = {"citizen_id": citizen_id, "context": context()}
    body.update(overrides)
    return body


def store_state(store: DecisionStore) -> str:
    """Everything observable in a store, as one comparable string."""
    records = [r.to_dict() for r in store.iter_records()]
    latest = store.latest_model()
    return json.dumps(
        {
            "records": records,
            "counts": {k: dataclasses.astuple(v) for k, v in store.group_counts().items()},
            "pending": store.pending_count(),
            "lag": store.learning_lag(),
            "model": None if latest is None else latest.version,
        },
        sort_keys=True,
        default=str,
    )


def citizen_in_group(client: Any, group: str, start: int = 0) -> str:
    """A raw citizen id (CPR-shaped) that the app's experiment puts in ``group``."""
    from bandit.privacy import pseudonymise

    runtime = client.app.state.runtime
    key = runtime.settings.pseudonym_key_bytes()
    for i in range(start, start + 10_000):
        raw = f"0101{i % 100:02d}{i:04d}"[:10]
        if runtime.experiment.group_of(pseudonymise(raw, key)).value == group:
            return raw
    raise AssertionError("no citizen found")  # pragma: no cover
