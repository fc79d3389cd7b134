"""A learner worker as its own process, for fault tests (SIGSTOP/SIGCONT, kill -9).

Runs :class:`service.learner.Learner` on a Redis or SQLite store with a short claim-idle time
(``nbi learner`` uses the store's 60 s default) and prints one JSON line per event to stdout:
``{"e": "lease"}`` when it holds the lease, ``{"e": "learned", "id": ...}`` per learned event,
``{"e": "commit", "version": ..., "n_updates": ..., "events": ...}`` per published snapshot and
``{"e": "stopped", "fenced_out": ...}`` at exit (SIGTERM stops it gracefully)::

    python -m tests.helpers.learner_process --store redis --url redis://... --prefix F: \\
        --consumer a --lease-ms 1500 --claim-idle-ms 3000 --snapshot-seconds 5
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from typing import Any

from bandit.catalog import default_catalog
from bandit.policies import make_policy
from service.learner import Learner, LearnerConfig
from service.store.base import DecisionStore, ModelSnapshot


def _emit(**fields: Any) -> None:
    print(json.dumps({**fields, "t": time.time()}), flush=True)


def _store(args: argparse.Namespace) -> DecisionStore:
    if args.store == "redis":
        from service.store.redis_store import RedisStore

        return RedisStore(args.url, prefix=args.prefix, claim_idle_ms=args.claim_idle_ms)
    from service.store.sqlite_store import SQLiteStore

    return SQLiteStore(args.url, claim_idle_seconds=args.claim_idle_ms / 1000)


def main() -> None:
    """Parse the options, run the worker until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=("redis", "sqlite"), required=True)
    parser.add_argument("--url", required=True, help="Redis URL or SQLite path")
    parser.add_argument("--prefix", default="nbi:")
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--lease-ms", type=int, default=1500)
    parser.add_argument("--claim-idle-ms", type=int, default=3000)
    parser.add_argument("--snapshot-seconds", type=float, default=5.0)
    parser.add_argument("--block-ms", type=int, default=200)
    args = parser.parse_args()
    store = _store(args)

    def committed(snapshot: ModelSnapshot, events: list[str]) -> None:
        assert learner.policy is not None  # noqa: S101
        _emit(
            e="commit",
            version=snapshot.version,
            n_updates=learner.policy.n_updates,
            events=len(events),
        )

    learner = Learner(
        store,
        default_catalog(),
        lambda: make_policy("uniform", seed=1),
        LearnerConfig(
            consumer=args.consumer,
            block_ms=args.block_ms,
            lease_ms=args.lease_ms,
            snapshot_every=100_000,
            snapshot_seconds=args.snapshot_seconds,
            delay_strategy="at_once",
        ),
        on_learned=lambda event_id: _emit(e="learned", id=event_id),
        on_commit=committed,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _emit(e="started")
    announced = False
    while not stop.is_set():
        learner.step()
        held = learner.policy is not None  # loaded only while it holds the lease
        if held and not announced:
            _emit(e="lease")
        announced = held
    learner.run(stop)  # stop is set: commits and releases the lease if still held
    _emit(e="stopped", fenced_out=learner.stats.fenced_out, snapshots=learner.stats.snapshots)
    store.close()


if __name__ == "__main__":
    main()
