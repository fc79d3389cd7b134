"""``nbi serve``: run the HTTP decision service with uvicorn."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from service.config import Settings


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the root app."""

    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to bind."),
        port: int = typer.Option(8000, min=0, max=65_535, help="TCP port (0..65535)."),
        workers: int = typer.Option(1, min=1, help="Worker processes (use a Redis store for >1)."),
        store: str | None = typer.Option(
            None, help="Decision store: sqlite or redis (default: NBI_STORE or sqlite)."
        ),
        redis_url: str | None = typer.Option(None, help="Redis URL (default: NBI_REDIS_URL)."),
        sqlite_path: str | None = typer.Option(
            None, help="SQLite file (default: NBI_SQLITE_PATH)."
        ),
        policy: str | None = typer.Option(None, help="Policy name (default: NBI_POLICY)."),
        learning: str | None = typer.Option(
            None, help="inprocess or worker (default: NBI_LEARNING or inprocess)."
        ),
    ) -> None:
        """Run the HTTP decision service."""
        import uvicorn

        from service.logs import configure_logging, uvicorn_log_config

        overrides = {
            "NBI_STORE": store,
            "NBI_REDIS_URL": redis_url,
            "NBI_SQLITE_PATH": sqlite_path,
            "NBI_POLICY": policy,
            "NBI_LEARNING": learning,
        }
        for name, value in overrides.items():
            if value is not None:
                os.environ[name] = value  # worker processes read the settings from the env
        from service.cli_common import check_bind, check_startup, load_settings, private_files

        settings = load_settings()  # validated once here: config errors surface before forking
        check_startup(settings)
        check_bind(settings, host)
        private_files()
        if workers > 1 and settings.learning == "inprocess":
            typer.echo(
                "error: several workers need --learning worker and a separate `nbi learner` "
                "(in-process learning is for a single replica)",
                err=True,
            )
            raise typer.Exit(2)
        _check_listen(host, port)
        _check_store(settings)
        configure_logging(settings.log_level)
        metrics_dir = _multiprocess_metrics_dir() if workers > 1 else None
        try:
            uvicorn.run(
                "service.app:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_config=uvicorn_log_config(settings.log_level),
                proxy_headers=False,
                server_header=False,
                # bounded request heads and slow-client timeouts (431/408)
                http="service.http_protocol:GuardedHttpToolsProtocol",
            )
        except SystemExit as exc:
            if exc.code not in (None, 0):  # uvicorn: 3 = the application did not start
                typer.echo(
                    f"error: the service did not start on {host}:{port} (exit {exc.code}); "
                    "the log above says why",
                    err=True,
                )
            raise
        finally:
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)


def _check_listen(host: str, port: int) -> None:
    """Exit 2 with one line if ``host:port`` cannot be bound (in use, no such interface)."""
    import socket

    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind(address)
    except OSError as exc:
        from service.cli_common import fail

        reason = exc.strerror or str(exc) or type(exc).__name__
        fail(f"cannot listen on {host}:{port} (--host/--port): {reason}")


def _check_store(settings: Settings) -> None:
    """Open the configured store once before start-up: a SQLite path that cannot be created
    or is not a database, or a Redis that does not answer, is one ``error:`` line (exit 1)."""
    from service.cli_common import fail, redact_url, store_errors
    from service.store.factory import make_store

    with store_errors(settings):
        store = make_store(settings)
        try:
            reachable = store.ping()
        finally:
            store.close()
    if not reachable:
        where = (
            f"the Redis store at {redact_url(settings.redis_url)} (NBI_REDIS_URL / --redis-url)"
            if settings.store == "redis"
            else f"the SQLite store {settings.sqlite_path}"
        )
        fail(f"cannot reach {where}", 1)


def _multiprocess_metrics_dir() -> str | None:
    """Give the worker processes one fresh shared Prometheus directory (``None`` if preset)."""
    from service.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        return None
    path = tempfile.mkdtemp(prefix="nbi-prometheus-")
    os.environ[MULTIPROC_ENV] = path
    return path
