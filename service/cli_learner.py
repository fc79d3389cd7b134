"""``nbi learner``: run the learner worker against the configured store.

Options override the ``NBI_*`` settings (:class:`service.config.Settings`). With
``--metrics-port`` the worker serves its Prometheus metrics on ``/metrics``.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any, cast

import typer


def _build(overrides: dict[str, Any], config_kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Settings, store and learner (imports are lazy so ``nbi --help`` stays fast)."""
    from bandit.catalog import default_catalog, load_catalog
    from bandit.errors import InvalidInputError
    from service.cli_common import (
        check_bind,
        check_startup,
        fail,
        load_settings,
        private_files,
        store_errors,
    )
    from service.learner import Learner, LearnerConfig
    from service.lifecycle import LifecycleStore, on_candidate
    from service.metrics import ServiceMetrics
    from service.runtime import fresh_policy
    from service.store.factory import make_store

    metrics_host = overrides.pop("metrics_host", None)
    settings = load_settings(**overrides)
    check_startup(settings)
    if metrics_host is not None:
        check_bind(settings, metrics_host, "the learner's /metrics")
    private_files()
    with store_errors(settings):  # not a database, an unwritable path: one line
        store = make_store(settings)
    catalog = (
        default_catalog() if settings.catalog_path is None else load_catalog(settings.catalog_path)
    )

    def fresh() -> Any:
        return fresh_policy(settings)

    try:
        config = LearnerConfig(
            snapshot_every=settings.snapshot_every,
            max_deliveries=settings.max_deliveries,
            delay_strategy=settings.delay_strategy,
            horizon_weeks=settings.horizon_weeks,
            report_lag_weeks=settings.report_lag_weeks,
            **{k: v for k, v in config_kwargs.items() if v is not None},
        )
    except InvalidInputError as exc:
        store.close()
        fail(str(exc))

    def candidate_published(snapshot: Any, _events: list[str]) -> None:
        # every snapshot is a candidate; auto/guardrail approval per NBI_MODEL_APPROVAL
        on_candidate(cast("LifecycleStore", store), settings, catalog, snapshot)

    learner = Learner(
        store,
        catalog,
        fresh,
        config,
        metrics=ServiceMetrics(),
        param_change=settings.model_param_change,
        on_commit=candidate_published,
    )
    return learner, store


MAX_PORT = 65_535


def register(app: typer.Typer) -> None:
    """Add ``nbi learner`` to the root app."""

    @app.command()
    def learner(  # noqa: PLR0913 (one option per setting)
        store: str = typer.Option(
            None, help="Store backend: redis or sqlite (default: NBI_STORE, else sqlite)."
        ),
        redis_url: str = typer.Option(None, help="Redis URL (default: NBI_REDIS_URL)."),
        redis_prefix: str = typer.Option(
            None, help="Redis key prefix (default: NBI_REDIS_PREFIX)."
        ),
        sqlite_path: str = typer.Option(
            None, help="SQLite file (default: NBI_SQLITE_PATH, else var/nbi.sqlite3)."
        ),
        policy: str = typer.Option(
            None, help="Policy used when no snapshot exists (default: NBI_POLICY)."
        ),
        consumer: str = typer.Option("learner-1", help="Stable consumer name of this worker."),
        batch_size: int = typer.Option(64, min=1, help="Messages read per batch (>= 1)."),
        block_ms: int = typer.Option(
            1000, min=0, help="Milliseconds a read waits for new messages (0: do not wait)."
        ),
        snapshot_every: int = typer.Option(
            None,
            min=1,
            help="Updates between snapshots, >= 1 (default: NBI_SNAPSHOT_EVERY, else 50).",
        ),
        snapshot_seconds: float = typer.Option(30.0, help="Max seconds between snapshots (> 0)."),
        max_deliveries: int = typer.Option(
            None,
            min=1,
            help="Deliveries before dead-lettering, >= 1 (default: NBI_MAX_DELIVERIES, else 5).",
        ),
        lease_ms: int = typer.Option(
            15_000,
            min=1,
            help="Single-writer lease (ms, >= 1; longer than --block-ms plus one batch): other "
            "workers wait as hot standbys.",
        ),
        metrics_port: int = typer.Option(
            0, min=0, max=MAX_PORT, help="Serve /metrics on this port (0: off; up to 65535)."
        ),
        metrics_host: str = typer.Option("127.0.0.1", help="Interface for /metrics."),
        exit_when_idle: int = typer.Option(
            0, min=0, help="Exit after this many empty reads in a row (0: run until stopped)."
        ),
    ) -> None:
        """Consume the learning queue, update the policy and publish model snapshots."""
        import math

        from service.cli_common import fail

        if not (math.isfinite(snapshot_seconds) and snapshot_seconds > 0):
            fail(f"--snapshot-seconds must be a number of seconds > 0, got {snapshot_seconds}")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        overrides = {
            "store": store,
            "redis_url": redis_url,
            "redis_prefix": redis_prefix,
            "sqlite_path": sqlite_path,
            "policy": policy,
            "snapshot_every": snapshot_every,
            "max_deliveries": max_deliveries,
            "metrics_host": metrics_host if metrics_port else None,
        }
        worker, backend = _build(
            overrides,
            {
                "consumer": consumer,
                "batch_size": batch_size,
                "block_ms": block_ms,
                "snapshot_seconds": snapshot_seconds,
                "lease_ms": lease_ms,
            },
        )
        if metrics_port:
            _serve_metrics(worker, backend, metrics_port, metrics_host)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        loaded = worker.load_when_reachable(stop)  # waits out a store outage at start-up
        version = "none" if loaded is None else loaded.model_version
        typer.echo(f"learner {consumer} started (model {version})", err=True)
        try:
            stats = worker.run(stop, max_idle_steps=exit_when_idle or None)
        finally:
            backend.close()
        typer.echo(
            f"learner stopped: learned={stats.learned} skipped={stats.skipped} "
            f"dead_lettered={stats.dead_lettered} snapshots={stats.snapshots}",
            err=True,
        )


def _serve_metrics(worker: Any, backend: Any, port: int, host: str) -> None:
    """Start the /metrics server; a port in use or a host that does not resolve is one
    ``error:`` line (exit 2), the store closed."""
    from prometheus_client import start_http_server

    from service.cli_common import fail

    try:
        start_http_server(port, addr=host, registry=worker.metrics.registry)
    except OSError as exc:
        backend.close()
        reason = exc.strerror or str(exc) or type(exc).__name__
        fail(f"cannot serve /metrics on {host}:{port} (--metrics-port/--metrics-host): {reason}")
