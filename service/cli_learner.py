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
    from service.cli_common import check_bind, check_startup, load_settings, private_files
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
    store = make_store(settings)
    catalog = (
        default_catalog() if settings.catalog_path is None else load_catalog(settings.catalog_path)
    )

    def fresh() -> Any:
        return fresh_policy(settings)

    config = LearnerConfig(
        snapshot_every=settings.snapshot_every,
        max_deliveries=settings.max_deliveries,
        delay_strategy=settings.delay_strategy,
        horizon_weeks=settings.horizon_weeks,
        report_lag_weeks=settings.report_lag_weeks,
        **{k: v for k, v in config_kwargs.items() if v is not None},
    )

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


def register(app: typer.Typer) -> None:
    """Add ``nbi learner`` to the root app."""

    @app.command()
    def learner(
        store: str = typer.Option(None, help="Store backend: redis or sqlite (NBI_STORE)."),
        redis_url: str = typer.Option(None, help="Redis URL (NBI_REDIS_URL)."),
        redis_prefix: str = typer.Option(None, help="Redis key prefix (NBI_REDIS_PREFIX)."),
        sqlite_path: str = typer.Option(None, help="SQLite file (NBI_SQLITE_PATH)."),
        policy: str = typer.Option(None, help="Policy used when no snapshot exists (NBI_POLICY)."),
        consumer: str = typer.Option("learner-1", help="Stable consumer name of this worker."),
        batch_size: int = typer.Option(64, help="Messages read per batch."),
        block_ms: int = typer.Option(1000, help="Milliseconds a read waits for new messages."),
        snapshot_every: int = typer.Option(None, help="Updates between snapshots."),
        snapshot_seconds: float = typer.Option(30.0, help="Max seconds between snapshots."),
        max_deliveries: int = typer.Option(None, help="Deliveries before dead-lettering."),
        lease_ms: int = typer.Option(
            15_000, help="Single-writer lease (ms): other workers wait as hot standbys."
        ),
        metrics_port: int = typer.Option(0, help="Serve /metrics on this port (0: off)."),
        metrics_host: str = typer.Option("127.0.0.1", help="Interface for /metrics."),
        exit_when_idle: int = typer.Option(
            0, help="Exit after this many empty reads in a row (0: run until stopped)."
        ),
    ) -> None:
        """Consume the learning queue, update the policy and publish model snapshots."""
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
            from prometheus_client import start_http_server

            start_http_server(metrics_port, addr=metrics_host, registry=worker.metrics.registry)
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
