"""Feature importance and model cards of kept versions, through the real app (both stores)
and the ``nbi`` command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from service.model_card import SECTIONS, build_card
from tests.helpers.api import ADMIN, CASE, PROBLEM, RESEARCHER, context, rec_body
from tests.service.test_model_lifecycle import trained_snapshot

N_DECISIONS = 40
GENDERS = ("female", "male")
ORIGINS = ("danish", "non_western")


def _common(**extra: Any) -> dict[str, Any]:
    return {
        "policy": "vw",
        "delay_strategy": "at_once",
        "learning": "worker",
        "model_poll_seconds": 3600.0,
        "sweep_interval_seconds": 3600.0,
        "control_share": 0.4,
        "simulated_time": True,
        "model_approval": "manual",
        **extra,
    }


@pytest.fixture(params=["sqlite", "redis"])
def app_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return Settings(store="sqlite", sqlite_path=tmp_path / "nbi.sqlite3", **_common())
    server = request.getfixturevalue("contract_redis_server")
    prefix = f"mc{uuid.uuid4().hex[:8]}:"
    return Settings(store="redis", redis_url=server.url, redis_prefix=prefix, **_common())


def drive(client: TestClient, n: int) -> tuple[str, dict[str, int]]:
    """Approve a trained candidate, then ``n`` decisions through the API with protected
    attributes, varied case facts, assignments and outcomes; the version and the counts per
    group."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    snapshot = trained_snapshot(runtime.settings, 30)
    runtime.store.save_model(snapshot)
    assert client.post(f"/v1/models/{snapshot.version}/approve", headers=ADMIN).status_code == 200
    counts = {"treatment": 0, "control": 0}
    for i in range(n):
        ctx = context(weeks_unemployed=2 + (7 * i) % 60, age=22 + (5 * i) % 40)
        body = rec_body(
            f"mc-{i:04d}",
            context=ctx,
            protected={"gender": GENDERS[i % 2], "origin": ORIGINS[(i // 2) % 2]},
        )
        r = client.post("/v1/recommendations", json=body, headers=CASE)
        assert r.status_code == 200, r.text
        out = r.json()
        stored = runtime.store.get_decision(out["event_id"])
        client.post(
            f"/v1/decisions/{out['event_id']}/assignment",
            json={"assigned_action_id": stored.recommended or stored.eligible[0]},
            headers=CASE,
        )
        outcome = (
            {"status": "employed", "weeks_to_job": 3}
            if i % 3
            else {"status": "unemployed_at_horizon"}
        )
        r = client.post("/v1/outcomes", json={"event_id": out["event_id"], **outcome}, headers=CASE)
        assert r.status_code == 200, r.text
        counts[out["group"]] += 1
    return snapshot.version, counts


@pytest.fixture
def driven(app_settings: Settings) -> Iterator[tuple[TestClient, str, dict[str, int]]]:
    with TestClient(create_app(app_settings)) as client:
        yield (client, *drive(client, N_DECISIONS))


def test_importance_endpoint_is_admin_only_deterministic_and_404s(
    driven: tuple[TestClient, str, dict[str, int]],
) -> None:
    client, version, counts = driven
    url = f"/v1/models/{version}/importance?rounds=100&repeats=3&seed=7"
    r = client.get(url, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    # every treatment decision was made by the approved model (live, with a pmf)
    assert body["rounds"] == counts["treatment"] and body["version"] == version
    names = [f["feature"] for f in body["features"]]
    assert {"age", "weeks_unemployed", "education", "cv_tokens"} <= set(names)
    changes = [f["reward_change"] for f in body["features"]]
    assert changes == sorted(changes, reverse=True) and all(c >= 0 for c in changes)
    # varied facts move the model: weeks unemployed and age were varied, education was not
    by_name = {f["feature"]: f for f in body["features"]}
    assert by_name["weeks_unemployed"]["reward_change"] > 0
    assert by_name["education"]["reward_change"] == 0.0 and by_name["education"]["present"] == 1
    assert client.get(url, headers=ADMIN).json() == body  # same seed, same numbers
    for key in (CASE, RESEARCHER):
        assert client.get(url, headers=key).status_code == 403
    missing = client.get("/v1/models/vw-none-1/importance", headers=ADMIN)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert "not kept" in missing.json()["detail"]
    bad = client.get(f"/v1/models/{version}/importance?rounds=1", headers=ADMIN)
    assert bad.status_code == 422
    card = client.get(f"/v1/models/{version}/card", headers=ADMIN)
    assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
    assert all(f"## {title}" in card.text for title in SECTIONS)
    page = client.get(f"/v1/models/{version}/card?format=html", headers=ADMIN)
    assert page.headers["content-type"].startswith("text/html") and "data:image/png" in page.text
    assert client.get(f"/v1/models/{version}/card", headers=RESEARCHER).status_code == 403
    assert client.get("/v1/models/vw-none-1/card", headers=ADMIN).status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/models/{version}/importance", "/v1/models/{version}/card"):
        op = paths[path]["get"]
        assert "Role: admin" in op["description"] and {"401", "403", "404"} <= set(op["responses"])


def _row(markdown: str, label: str) -> list[str]:
    line = next(x for x in markdown.splitlines() if x.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_model_card_has_every_section_with_real_numbers(tmp_path: Path) -> None:
    db = tmp_path / "nbi.sqlite3"
    settings = Settings(store="sqlite", sqlite_path=db, **_common())
    with TestClient(create_app(settings)) as client:
        version, counts = drive(client, N_DECISIONS)
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        card = build_card(runtime.store, settings, runtime.catalog, version, rounds=100, repeats=2)
        records = list(runtime.store.iter_records())
    # the audit's period: from this version's first to its last treatment decision
    times = [r.timestamp for r in records if r.group.value == "treatment"]
    control_in_period = sum(
        r.group.value == "control" and min(times) <= r.timestamp <= max(times) for r in records
    )
    env = {
        **os.environ,
        "NBI_SQLITE_PATH": str(db),
        "NBI_POLICY": "vw",
        "NBI_DELAY_STRATEGY": "at_once",
        "NBI_CONTROL_SHARE": "0.4",
        "NBI_SIMULATED_TIME": "true",
    }
    nbi = str(Path(sys.executable).with_name("nbi"))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [nbi, *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )

    md, page = tmp_path / "card.md", tmp_path / "card.html"
    done = run("models", "card", version, "--out", str(md), "--rounds", "100", "--repeats", "2")
    assert done.returncode == 0, done.stderr
    assert run("models", "card", version, "--out", str(page)).returncode == 0
    text = md.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert headings == list(SECTIONS)
    # Model: the approved version and what it learned
    assert _row(text, "status")[1] == "approved: serves"
    assert _row(text, "learned from")[1] == "30 settled outcomes"
    # Data window: every decision came after the snapshot and was made by this version
    assert _row(text, "decisions made by this version")[1] == str(counts["treatment"])
    assert card.facts["served"] == counts["treatment"]
    # Features: the measured importance, in the card's order
    for f in card.importance.features:
        assert _row(text, f.feature)[2] == f"{f.reward_change:.4f} ± {f.reward_change_sd:.4f}"
    assert "Protected attributes (gender, origin) are not model features" in text
    # Exploration: the settings and the pmf they give
    assert _row(text, "exploration")[1] == "squarecb" and _row(text, "floor")[1] == "0.03"
    assert 0 < card.facts["min_probability"] < card.facts["mean_top_probability"] <= 1
    assert f"{100 * card.facts['mean_top_probability']:.1f} %" in text
    # Off-policy comparison: estimates on the followed live decisions
    candidate = _row(text, "candidate")
    assert candidate[1] == version and candidate[5] == str(counts["treatment"])
    assert re.fullmatch(r"[0-9.]+ \[[0-9.-]+, [0-9.]+\]", candidate[2])
    practice = _row(text, "practice as usual")
    assert practice[5] == str(counts["control"])
    # Fairness audit: both protected attributes by group, with counts that add up
    gender_rows = [
        [c.strip() for c in x.strip("|").split("|")]
        for x in text.splitlines()
        if x.startswith("| gender |")
    ]
    assert {r[1] for r in gender_rows} == set(GENDERS)
    assert sum(int(r[2]) for r in gender_rows) == counts["treatment"]
    assert sum(int(r[3]) for r in gender_rows) == control_in_period > 0
    assert "Flagged as harmed" in text
    # Known limits
    assert "- Importance is the model's sensitivity" in text
    html_text = page.read_text()
    assert html_text.startswith("<!doctype html>") and "data:image/png;base64," in html_text
    assert all(f">{title}</h2>" in html_text for title in SECTIONS)
    # no pseudonym or raw id in a card
    with TestClient(create_app(settings)) as client:
        keys = {r.citizen_key for r in client.app.state.runtime.store.iter_records()}  # type: ignore[attr-defined]
    assert not any(k in text or k in html_text for k in keys) and "mc-0001" not in text

    unknown = run("models", "card", "vw-none-1", "--out", str(tmp_path / "x.md"))
    lines = unknown.stderr.strip().splitlines()
    assert unknown.returncode == 1 and len(lines) == 1
    assert lines[0].startswith("error: Model version 'vw-none-1' is not kept")
    assert not (tmp_path / "x.md").exists()
    bad_format = run("models", "card", version, "--out", str(tmp_path / "x.txt"))
    assert bad_format.returncode == 1 and "use .md or .html" in bad_format.stderr

    # nbi importance -> file -> nbi report shows it as a plot
    imp = tmp_path / "importance.json"
    shown = run("importance", version, "--rounds", "100", "--repeats", "2", "--out", str(imp))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1].split()[:3] == ["feature", "reward", "change"]
    report = tmp_path / "report.html"
    written = run("report", "--importance", str(imp), "--out", str(report))
    assert written.returncode == 0, written.stderr
    page_text = report.read_text()
    assert 'id="importance"' in page_text and "data:image/png;base64," in page_text
    for f in card.importance.features:  # same seed and data: the card's numbers
        assert f"{f.reward_change:.4f} ± {f.reward_change_sd:.4f}" in page_text


def test_the_card_gives_no_harm_verdict_when_no_group_could_be_tested():
    """Two citizens per arm, every one employed: no group has a test (no variation), so the
    card must not read "Flagged as harmed: none"."""
    from service.model_card import _fairness_section

    rows = [
        {"group": g, "employed": 1, "complied": 1, "gender": s, "origin": None, "age_band": None}
        for g in ("treatment", "control")
        for s in ("female", "female", "male", "male")
    ]
    section, facts = _fairness_section(rows)  # type: ignore[arg-type]
    text = " ".join(section.paragraphs)
    assert "No harm verdict: 0 of 2 groups tested" in text, text
    assert "Flagged as harmed" not in text
    assert facts["fairness_flagged"] == 0.0
