"""Issue 9.4: erasing one citizen leaves no byte of them in either store, its files, the logs or
an export; the erasure is audited; other citizens are untouched. Retention purges by age."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bandit.privacy import pseudonymise
from service.app import create_app
from service.audit import AuditTrail, open_audit_log
from service.logs import JsonFormatter
from tests.helpers.api import ADMIN, CASE, RESEARCHER, context
from tests.helpers.governance import drive, nbi
from tests.helpers.redis_server import RedisServer

TARGET = "240285-4411"
TARGET_PROTECTED = {"gender": "other", "origin": "non_western"}
OTHERS_PROTECTED = {"gender": "male", "origin": "danish"}
TARGET_MARKS = (b"non_western", b'"gender":"other"')


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    client = server.client()
    # uncompressed, plain-command AOF: a byte scan sees every value that is on disk
    client.config_set("rdbcompression", "no")
    client.config_set("aof-use-rdb-preamble", "no")
    client.close()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def cfg(request: pytest.FixtureRequest, settings: Any) -> Any:
    update: dict[str, Any] = {"simulated_time": True, "policy": "uniform"}
    if request.param == "redis":
        server = request.getfixturevalue("redis_aof")
        update |= {"store": "redis", "redis_url": server.url, "redis_prefix": "er:"}
    return settings.model_copy(update=update)


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Every service log record, JSON lines, as ``nbi serve`` writes them."""
    path = tmp_path / "service.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
        handler.close()


def _target_decisions(client: Any) -> list[str]:
    events = []
    for i in range(3):
        body = {
            "citizen_id": TARGET,
            "context": context(age=41),
            "protected": TARGET_PROTECTED,
            "request_id": f"req-target-{i}",
        }
        r = client.post("/v1/recommendations", json=body, headers=CASE)
        assert r.status_code == 200, r.text
        doc = r.json()
        events.append(doc["event_id"])
        if doc["recommendation"] is not None:
            a = client.post(
                f"/v1/decisions/{doc['event_id']}/assignment",
                json={"assigned_action_id": doc["recommendation"]["action_id"]},
                headers=CASE,
            )
            assert a.status_code == 200
        if i < 2:  # the third stays open (pending, in the queue)
            o = client.post(
                "/v1/outcomes",
                json={"event_id": doc["event_id"], "status": "employed", "weeks_to_job": 4.0},
                headers=CASE,
            )
            assert o.status_code == 200
    return events


def _disk_bytes(cfg: Any, redis_dir: Path | None) -> bytes:
    if cfg.store == "sqlite":
        files = sorted(cfg.sqlite_path.parent.glob(cfg.sqlite_path.name + "*"))
        assert files, "no SQLite files"
    else:
        assert redis_dir is not None
        files = sorted(p for p in redis_dir.rglob("*") if p.is_file() and p.name != "redis.log")
        assert any("aof" in p.name for p in files), files
    return b"".join(p.read_bytes() for p in files)


def _redis_keyspace(cfg: Any, *, logical: bool = False) -> bytes:
    """Every key name and serialised value (``DUMP``) of the keyspace but the audit list.

    ``logical``: streams as their live entries (``XRANGE``) instead of ``DUMP``: ``XDEL`` only
    flags an entry, its bytes stay in the stream's listpack node until the whole node is
    deleted (README, erasure). Streams hold event ids and kinds, never personal data.
    """
    import redis

    client = redis.Redis.from_url(cfg.redis_url)
    chunks = []
    for key in client.scan_iter(count=1000):
        if key == f"{cfg.redis_prefix}audit".encode():
            continue  # names event ids of assignments and outcomes, no content (README)
        chunks.append(key)
        if logical and client.type(key) == b"stream":
            for _, fields in client.xrange(key):
                chunks.extend(v for kv in fields.items() for v in kv)
        else:
            chunks.append(client.dump(key) or b"")
    client.close()
    return b"\n".join(chunks)


def _others(client: Any) -> list[dict[str, Any]]:
    store = client.app.state.runtime.store
    target = pseudonymise(TARGET, client.app.state.runtime.settings.pseudonym_key_bytes())
    return [r.to_dict() for r in store.iter_records() if r.citizen_key != target]


def test_erasure_leaves_no_trace_of_the_citizen(
    cfg: Any, log_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    redis_dir = request.getfixturevalue("redis_aof").directory if cfg.store == "redis" else None
    pseudonym = pseudonymise(TARGET, cfg.pseudonym_key_bytes())
    marks = (pseudonym[2:].encode(), *TARGET_MARKS)
    with TestClient(create_app(cfg)) as client:
        drive(client, 12, seed=7, protected=OTHERS_PROTECTED)
        events = _target_decisions(client)
        drive(client, 12, seed=8, start=100, protected=OTHERS_PROTECTED)
        others_before = _others(client)
        summary_before = client.get("/v1/experiment/summary", headers=RESEARCHER).json()
        # positive control: the scan does see the citizen before the erasure
        before = _disk_bytes(cfg, redis_dir)
        assert all(m in before for m in marks), "the byte scan cannot see the data"

        r = client.post(
            "/v1/citizens/erase",
            json={"citizen_id": TARGET.replace("-", ""), "reference": "GDPR-2026-17"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["records"] == 3
        assert report["protected"] == 3
        assert report["request_ids"] == 3
        assert report["flushed"] is True
        again = client.post("/v1/citizens/erase", json={"citizen_id": TARGET}, headers=ADMIN)
        assert again.json()["records"] == 0

        disk = _disk_bytes(cfg, redis_dir)
        keyspace = _redis_keyspace(cfg) if cfg.store == "redis" else b""
        live = _redis_keyspace(cfg, logical=True) if cfg.store == "redis" else b""
        for mark in marks:
            assert mark not in disk, mark
            assert mark not in keyspace, mark
        for event in events:
            with pytest.raises(LookupError):
                client.app.state.runtime.store.get_decision(event)
            assert event.encode() not in live
            assert _sqlite_mentions(cfg, event) == 0
        assert _others(client) == others_before
        summary = client.get("/v1/experiment/summary", headers=RESEARCHER).json()
        removed = sum(
            summary_before[g]["decisions"] - summary[g]["decisions"]
            for g in ("treatment", "control")
        )
        assert removed == 3
        assert client.app.state.runtime.store.pending_count() == sum(
            1 for o in others_before if o["outcome"] is None
        )
    # what an export writes afterwards holds no trace either
    env = {"NBI_STORE": cfg.store, "NBI_SQLITE_PATH": str(cfg.sqlite_path)}
    if cfg.store == "redis":
        env |= {"NBI_REDIS_URL": cfg.redis_url, "NBI_REDIS_PREFIX": cfg.redis_prefix}
    out = tmp_path / "exp" / "d.csv"
    done = nbi(
        "export",
        "--out",
        str(out),
        "--protected",
        "--include-open",
        "--api-key",
        "dev-researcher-key",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    exported = b"".join(p.read_bytes() for p in out.parent.iterdir())
    assert b"non_western" not in exported and pseudonym[2:].encode() not in exported
    assert b"male" in exported  # the others are exported
    logs = log_file.read_bytes()
    assert b"decision" in logs  # the service did log
    for mark in marks:
        assert mark not in logs
    assert pseudonym[2:14].encode() not in logs
    trail = AuditTrail(open_audit_log(cfg))
    erasures = [e for e in trail.entries() if e.action == "erasure"]
    assert trail.verify().ok
    trail.close()
    assert [e.detail["records"] for e in erasures] == [3, 0]
    assert erasures[0].detail["reference"] == "GDPR-2026-17"
    assert erasures[0].role == "admin" and erasures[0].actor.startswith("k_")
    assert pseudonym[2:] not in json.dumps([e.to_json() for e in erasures])


def _sqlite_mentions(cfg: Any, event: str) -> int:
    """Rows naming ``event`` in every SQLite table but the audit trail's."""
    if cfg.store != "sqlite":
        return 0
    con = sqlite3.connect(cfg.sqlite_path)
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    found = 0
    for table in tables:
        columns = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        if table.startswith(("audit", "sqlite_")) or "event_id" not in columns:
            continue
        sql = f"SELECT COUNT(*) FROM {table} WHERE event_id = ?"  # noqa: S608 (table names)
        found += con.execute(sql, (event,)).fetchone()[0]
    con.close()
    return found


def test_erase_cli_and_bad_input(settings: Any) -> None:
    cfg = settings.model_copy(update={"simulated_time": True, "policy": "uniform"})
    with TestClient(create_app(cfg)) as client:
        drive(client, 4, seed=1)
        first = client.app.state.runtime.store
        n = sum(1 for _ in first.iter_records())
    env = {"NBI_SQLITE_PATH": str(cfg.sqlite_path)}
    done = nbi("erase", "01019" + "00000", "--reference", "ticket-1", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records"] == 1
    con = sqlite3.connect(cfg.sqlite_path)
    assert con.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == n - 1
    con.close()
    bad = nbi("erase", "0101900000", "--reference", "010190-1234", env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: reference must be at most 64 characters and hold no CPR number"
    ]
    wrong_role = nbi("erase", "0101900000", "--api-key", "dev-case-key", env=env)
    assert wrong_role.returncode == 2
    with TestClient(create_app(cfg)) as client:
        r = client.post("/v1/citizens/erase", json={"citizen_id": TARGET}, headers=CASE)
        assert r.status_code == 403
        r = client.post("/v1/citizens/erase", json={"citizen_id": ""}, headers=ADMIN)
        assert r.status_code == 422


def test_retention_purges_old_records_with_a_metric(cfg: Any) -> None:
    from service.erasure import months_before, purge_expired

    with TestClient(create_app(cfg)) as client:
        drive(client, 10, seed=2)
        runtime = client.app.state.runtime
        records = list(runtime.store.iter_records())
        # the future: everything is older than 1 month then
        later = datetime.fromtimestamp(max(r.timestamp for r in records), tz=UTC)
        settings = runtime.settings.model_copy(update={"retention_months": 1})
        eraser, trail = client.app.state.eraser, client.app.state.audit
        assert purge_expired(settings, eraser, trail, now=later).records == 0
        soon = later.replace(year=later.year + 1)
        cut = months_before(soon, 1).timestamp()
        assert cut > max(r.timestamp for r in records)
        purged = purge_expired(settings, eraser, trail, now=soon)
        assert purged.records == len(records)
        assert list(runtime.store.iter_records()) == []
        counts = runtime.store.group_counts()
        assert all(c.decisions == 0 and c.settled == 0 for c in counts.values())
        assert [e.action for e in trail.entries()][-1] == "retention"
    # the scheduled job and its metric
    with TestClient(create_app(cfg.model_copy(update={"retention_months": 1}))) as client:
        metrics = client.get("/metrics", headers={"Authorization": "Bearer dev-metrics-key"})
        assert "nbi_retention_purged_records_total 0.0" in metrics.text
