"""Drive a service app with decisions, assignments and outcomes; run ``nbi`` as a process."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers.api import ADMIN, CASE, context

NBI = str(Path(sys.executable).with_name("nbi"))


def drive(
    client: Any, n: int, *, seed: int = 0, start: int = 0, protected: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """``n`` citizens: a recommendation each, then (mostly) an assignment and an outcome.

    Every fifth citizen stays open (no outcome); one in 7 drops out (censored). Returns the
    recommendation responses with the raw ``citizen_id`` added.
    """
    rng = random.Random(seed)
    out = []
    for i in range(start, start + n):
        raw = f"{(i % 28) + 1:02d}0190{i:04d}"
        body: dict[str, Any] = {"citizen_id": raw, "context": context(age=20 + i % 40)}
        if protected is not None:
            body["protected"] = protected
        r = client.post("/v1/recommendations", json=body, headers=CASE)
        assert r.status_code == 200, r.text
        doc = {**r.json(), "citizen_id": raw}
        out.append(doc)
        event = doc["event_id"]
        if doc["recommendation"] is not None:
            rec = doc["recommendation"]["action_id"]
            follow = rng.random() < 0.8
            assigned = rec if follow else doc["options"][-1]["action_id"]
            reason = None if assigned == rec else {"reason_code": "caseworker_judgement"}
            a = client.post(
                f"/v1/decisions/{event}/assignment",
                json={"assigned_action_id": assigned, **(reason or {})},
                headers=CASE,
            )
            assert a.status_code == 200, a.text
        if i % 5 == 4:
            continue
        u = rng.random()
        if u < 1 / 7:
            outcome: dict[str, Any] = {"status": "dropout", "weeks_observed": 3.0}
        elif u < 0.5 + (0.1 if doc["group"] == "treatment" else 0.0):
            outcome = {"status": "employed", "weeks_to_job": float(rng.randint(1, 25))}
        else:
            outcome = {"status": "unemployed_at_horizon"}
        o = client.post("/v1/outcomes", json={"event_id": event, **outcome}, headers=CASE)
        assert o.status_code == 200, o.text
    return out


def nbi(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``nbi ARGS`` as a process with ``env`` added to this environment."""
    return subprocess.run(  # noqa: S603 (our own console script)
        [NBI, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


__all__ = ["ADMIN", "CASE", "drive", "nbi"]
