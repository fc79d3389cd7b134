"""Issue 9.5: the service's records -> ``nbi export`` -> ``nbi experiment`` / ``evaluate``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.helpers.api import RESEARCHER
from tests.helpers.governance import drive, nbi


def _env(settings: Any) -> dict[str, str]:
    env = {"NBI_STORE": settings.store, "NBI_POLICY": settings.policy}
    if settings.store == "sqlite":
        env["NBI_SQLITE_PATH"] = str(settings.sqlite_path)
    else:
        env |= {"NBI_REDIS_URL": settings.redis_url, "NBI_REDIS_PREFIX": settings.redis_prefix}
    return env


@pytest.fixture(params=["sqlite", "redis"])
def app_settings(request: pytest.FixtureRequest, settings: Any) -> Any:
    update: dict[str, Any] = {"simulated_time": True, "policy": "uniform"}
    if request.param == "redis":
        server = request.getfixturevalue("contract_redis_server")
        server.flush()
        update |= {"store": "redis", "redis_url": server.url, "redis_prefix": "exp:"}
    return settings.model_copy(update=update)


def test_export_gives_the_summary_itt_and_an_evaluable_log(
    app_settings: Any, tmp_path: Path
) -> None:
    with TestClient(create_app(app_settings)) as client:
        drive(client, 90, seed=3, protected={"gender": "female", "origin": "danish"})
        summary = client.get("/v1/experiment/summary", headers=RESEARCHER).json()
    env = _env(app_settings)
    out = tmp_path / "export" / "decisions.parquet"
    done = nbi(
        "export", "--out", str(out), "--since", "2020-01-01", "--until", "2100-01-01", env=env
    )
    assert done.returncode == 0, done.stderr
    files = json.loads(done.stdout)
    rct = pd.read_parquet(files["rct_file"])
    settled = summary["treatment"]["settled"] - summary["treatment"]["censored"]
    settled += summary["control"]["settled"] - summary["control"]["censored"]
    assert len(rct) == settled
    assert not {"event_id", "citizen_key", "gender", "origin"} & set(rct.columns)
    assert files["fairness_file"] is None
    exp = nbi("experiment", files["rct_file"], "--json", env=env)
    assert exp.returncode == 0, exp.stderr
    itt = json.loads(exp.stdout)["itt"]["estimate"]
    assert itt == pytest.approx(summary["difference"], abs=1e-12)
    ev = nbi("evaluate", str(out), "--policy", "uniform", "--ci", "analytic", env=env)
    assert ev.returncode == 0, ev.stderr
    assert "uniform" in ev.stdout


def test_protected_attributes_only_for_a_researcher_key_and_only_in_the_fairness_file(
    settings: Any, tmp_path: Path
) -> None:
    cfg = settings.model_copy(update={"simulated_time": True, "policy": "uniform"})
    with TestClient(create_app(cfg)) as client:
        drive(client, 40, seed=5, protected={"gender": "female", "origin": "western"})
    env = _env(cfg)
    out = tmp_path / "d.csv"
    refused = nbi("export", "--out", str(out), "--protected", env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith("error: --protected needs a researcher API key")
    case_key = nbi("export", "--out", str(out), "--protected", "--api-key", "dev-case-key", env=env)
    assert case_key.returncode == 2
    done = nbi(
        "export", "--out", str(out), "--protected", "--api-key", "dev-researcher-key", env=env
    )
    assert done.returncode == 0, done.stderr
    files = json.loads(done.stdout)
    fair = pd.read_csv(files["fairness_file"])
    assert set(fair["gender"]) == {"female"}
    for name in (files["log_file"], files["rct_file"]):
        text = Path(name).read_text()
        assert "female" not in text and "western" not in text
        assert not re.search(r"p_[0-9a-f]{64}", text)
    audit = nbi("fairness", files["fairness_file"], "--attribute", "age_band", "--json", env=env)
    assert audit.returncode == 0, audit.stderr
    shown = nbi("audit", "show", env=env)
    exports = [json.loads(x) for x in shown.stdout.splitlines() if '"action":"export"' in x]
    assert [e["actor"] for e in exports] == ["k_" + _hash("dev-researcher-key")[:12]]
    assert exports[0]["role"] == "researcher"
    assert exports[0]["detail"]["protected"] is True
    assert "dev-researcher-key" not in shown.stdout


def test_bad_export_options_are_one_error_line(settings: Any, tmp_path: Path) -> None:
    env = _env(settings)
    for args, text in (
        (["--out", str(tmp_path / "x.txt")], "--out must end in .parquet or .csv"),
        (["--out", str(tmp_path / "x.csv"), "--since", "2026-13-01"], "--since must be a date"),
        (
            ["--out", str(tmp_path / "x.csv"), "--since", "2026-02-01", "--until", "2026-01-01"],
            "--since must not be after --until",
        ),
    ):
        done = nbi("export", *args, env=env)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("error: ") and text in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def _hash(key: str) -> str:
    from service.config import hash_api_key

    return hash_api_key(key)
