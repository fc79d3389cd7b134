"""Issue 9.3: the tamper-evident audit trail in both stores, through the app and ``nbi audit``."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.audit import AuditTrail, open_audit_log
from service.config import hash_api_key
from tests.helpers.governance import drive, nbi


@pytest.fixture(params=["sqlite", "redis"])
def cfg(request: pytest.FixtureRequest, settings: Any) -> Any:
    update: dict[str, Any] = {"simulated_time": True, "policy": "uniform"}
    if request.param == "redis":
        server = request.getfixturevalue("contract_redis_server")
        server.flush()
        update |= {"store": "redis", "redis_url": server.url, "redis_prefix": "aud:"}
    return settings.model_copy(update=update)


def _env(settings: Any) -> dict[str, str]:
    if settings.store == "sqlite":
        return {"NBI_STORE": "sqlite", "NBI_SQLITE_PATH": str(settings.sqlite_path)}
    return {
        "NBI_STORE": "redis",
        "NBI_REDIS_URL": settings.redis_url,
        "NBI_REDIS_PREFIX": settings.redis_prefix,
    }


def _tamper(settings: Any, seq: int, *, remove: bool = False) -> None:
    """Change (or remove) entry ``seq`` directly in the store, as an intruder would."""
    if settings.store == "sqlite":
        conn = sqlite3.connect(settings.sqlite_path)
        conn.execute("DROP TRIGGER audit_append_only_update")
        conn.execute("DROP TRIGGER audit_append_only_delete")
        if remove:
            conn.execute("DELETE FROM audit WHERE seq = ?", (seq,))
        else:
            conn.execute(
                'UPDATE audit SET entry = replace(entry, \'"role":"case"\', \'"role":"admin"\') '
                "WHERE seq = ?",
                (seq,),
            )
        conn.commit()
        conn.close()
        return
    import redis

    client = redis.Redis.from_url(settings.redis_url)
    key = f"{settings.redis_prefix}audit"
    text = client.lindex(key, seq - 1)
    assert text is not None
    if remove:
        client.lrem(key, 1, text)
    else:
        client.lset(key, seq - 1, text.replace(b'"role":"case"', b'"role":"admin"'))
    client.close()


def test_requests_are_attributed_to_a_key_id_and_the_chain_verifies(cfg: Any) -> None:
    with TestClient(create_app(cfg)) as client:
        drive(client, 6, seed=1, protected={"gender": "male"})
    trail = AuditTrail(open_audit_log(cfg))
    entries = list(trail.entries())
    raw = "\n".join(trail.log.stored())
    trail.close()
    assert entries[0].action == "config"
    assert entries[0].actor == "system"
    assert len(entries[0].detail["fingerprint"]) == 64
    actions = {e.action for e in entries}
    assert {"assignment", "outcome"} <= actions
    case_id = "k_" + hash_api_key("dev-case-key")[:12]
    assert {(e.actor, e.role) for e in entries[1:]} == {(case_id, "case")}
    assert "dev-case-key" not in raw and "dev-pseudonym-key" not in raw
    assert not re.search(r"p_[0-9a-f]{64}", raw)
    assert '"gender"' not in raw and "male" not in raw
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    done = nbi("audit", "verify", env=_env(cfg))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"audit trail intact: {len(entries)} entries"


@pytest.mark.parametrize(
    ("seq", "remove", "message"),
    [
        (3, False, "audit trail broken at entry 3: contents changed (hash mismatch)"),
        (2, True, "audit trail broken at entry 2: entry 2 is missing (found 3 next)"),
        (-1, True, "are missing (head is entry"),
    ],
)
def test_a_changed_or_removed_entry_is_named_by_verify(
    cfg: Any, seq: int, remove: bool, message: str
) -> None:
    with TestClient(create_app(cfg)) as client:
        drive(client, 3, seed=2)
    trail = AuditTrail(open_audit_log(cfg))
    n = len(list(trail.entries()))
    trail.close()
    _tamper(cfg, n if seq == -1 else seq, remove=remove)
    for command in ("verify", "show"):
        done = nbi("audit", command, env=_env(cfg))
        assert done.returncode == 1, done.stdout
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("error: audit trail broken at entry")
        assert message in lines[0]


def test_named_key_ids_and_concurrent_appends(cfg: Any) -> None:
    named = {"case": ["cms-aarhus:" + hash_api_key("dev-case-key")]}
    with TestClient(create_app(cfg.model_copy(update={"api_keys": named}))) as client:
        drive(client, 2, seed=4)
    logs = [open_audit_log(cfg) for _ in range(4)]
    trails = [AuditTrail(log) for log in logs]

    def work(trail: AuditTrail) -> None:
        for i in range(25):
            trail.append("k_test", "admin", "export", "decisions", {"i": i})

    threads = [threading.Thread(target=work, args=(t,)) for t in trails]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = list(trails[0].entries())
    result = trails[0].verify()
    for t in trails:
        t.close()
    assert result.ok, result.line()
    assert sum(e.action == "export" for e in entries) == 100
    assert {e.actor for e in entries if e.action in ("assignment", "outcome")} == {"cms-aarhus"}


def test_audit_refuses_personal_data_in_an_entry(tmp_path: Path) -> None:
    from bandit.errors import InvalidInputError
    from service.store.sqlite_audit import SQLiteAuditLog

    trail = AuditTrail(SQLiteAuditLog(tmp_path / "a.sqlite3"))
    with pytest.raises(InvalidInputError, match="CPR"):
        trail.append("k_1", "admin", "erasure", "citizen", {"reference": "010190-1234"})
    with pytest.raises(InvalidInputError, match="CPR"):
        trail.append("k_1", "admin", "erasure", "0101901234")
    assert list(trail.entries()) == []
    assert json.loads(trail.append("k_1", "admin", "export", "x").to_json())["seq"] == 1
    trail.close()


def test_named_key_entries_are_validated() -> None:
    from pydantic import ValidationError

    from service.config import Settings

    ok = Settings(_env_file=None, api_keys={"case": ["cms.1:" + hash_api_key("k")]})
    assert ok.api_keys["case"][0].startswith("cms.1:")
    with pytest.raises(ValidationError, match="API key ids"):
        Settings(_env_file=None, api_keys={"case": ["bad id:" + hash_api_key("k")]})
