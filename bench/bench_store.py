"""Embedded store benchmark: ``SQLiteStore`` decision + outcome writes vs raw ``sqlite3``.

Both sides run in the same process on the same disk, with the same durability (WAL,
``synchronous=FULL``, one committed transaction per write) and the same JSON payloads:

* ours: ``put_decision`` (record + request id) then ``record_outcome`` (read, conflict check,
  update, learning-queue insert) per event;
* reference: two plain transactions per event (``INSERT`` of the record JSON, then an
  ``UPDATE`` of the same row) through ``sqlite3`` directly, i.e. the floor any SQLite-backed
  store pays for two durable writes.

Reported: events/s of each, the ratio ours/reference, and the p50/p99 latency of one
``put_decision``. ``python -m bench.run_all store [--quick]``.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bandit.control import Group  # noqa: E402
from bandit.records import DecisionRecord  # noqa: E402
from bandit.rewards import Outcome, OutcomeStatus  # noqa: E402
from service.store.sqlite_store import SQLiteStore  # noqa: E402

HORIZON = 26 * 7 * 86400.0
EMPLOYED = Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=4.0)


def _record(n_actions: int) -> DecisionRecord:
    eligible = tuple(f"ACTION_{i:03d}" for i in range(n_actions))
    pmf = (1.0 / n_actions,) * n_actions
    return DecisionRecord(
        event_id=uuid.uuid4().hex,
        timestamp=time.time(),
        citizen_key="p_" + uuid.uuid4().hex * 2,
        group=Group.TREATMENT,
        context={"age": 35, "target_group": "dagpenge", "weeks_unemployed": 12, "cv_welding": 1.0},
        eligible=eligible,
        pmf=pmf,
        recommended=eligible[0],
        propensity=pmf[0],
        model_version="vw-bench-0",
        policy="vw",
        experiment="nbi-rct:0.2:2026-01-01:abcd",
    )


def _ours(folder: Path, records: list[DecisionRecord]) -> tuple[float, list[float]]:
    store = SQLiteStore(folder / "ours.sqlite3")
    latencies = []
    start = time.perf_counter()
    for i, rec in enumerate(records):
        t = time.perf_counter()
        store.put_decision(rec, request_id=f"r{i}", horizon_seconds=HORIZON)
        latencies.append(time.perf_counter() - t)
        store.record_outcome(rec.event_id, EMPLOYED, 1.0, censored=False)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed, latencies


def _reference(folder: Path, records: list[DecisionRecord]) -> float:
    conn = sqlite3.connect(folder / "ref.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE r (event_id TEXT PRIMARY KEY, record TEXT NOT NULL)")
    start = time.perf_counter()
    for rec in records:
        text = json.dumps(rec.to_dict(), sort_keys=True, separators=(",", ":"))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO r VALUES (?, ?)", (rec.event_id, text))
        conn.execute("COMMIT")
        settled = json.dumps(
            rec.with_outcome(EMPLOYED, 1.0, censored=False).to_dict(),
            sort_keys=True,
            separators=(",", ":"),
        )
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE r SET record = ? WHERE event_id = ?", (settled, rec.event_id))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def run(quick: bool = False) -> dict[str, object]:
    """Measure both sides for 50 and 300 eligible actions."""
    n_events = 200 if quick else 1000
    out: dict[str, object] = {"events": n_events}
    for n_actions in (50, 300):
        records = [_record(n_actions) for _ in range(n_events)]
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            ref = _reference(folder, records)
            ours, latencies = _ours(folder, records)
        lat = np.array(latencies) * 1000
        row = {
            "ours_events_per_s": round(n_events / ours, 1),
            "reference_events_per_s": round(n_events / ref, 1),
            "ratio_ours_to_reference": round(ref / ours, 3),
            "put_p50_ms": round(float(np.percentile(lat, 50)), 3),
            "put_p99_ms": round(float(np.percentile(lat, 99)), 3),
        }
        out[f"actions_{n_actions}"] = row
        print(f"{n_actions:>3} actions: " + ", ".join(f"{k}={v}" for k, v in row.items()))
    return out


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
