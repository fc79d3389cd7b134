"""``nbi serve``: run the HTTP decision service with uvicorn."""

from __future__ import annotations

import os
import shutil
import tempfile

import typer


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the root app."""

    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to bind."),
        port: int = typer.Option(8000, help="TCP port."),
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
        finally:
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)


def _multiprocess_metrics_dir() -> str | None:
    """Give the worker processes one fresh shared Prometheus directory (``None`` if preset)."""
    from service.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):
        return None
    path = tempfile.mkdtemp(prefix="nbi-prometheus-")
    os.environ[MULTIPROC_ENV] = path
    return path
