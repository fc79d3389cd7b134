"""``nbi serve`` and ``nbi learner`` commands (placeholder until the service lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the service commands to the root app."""

    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to bind."),
        port: int = typer.Option(8000, help="TCP port."),
    ) -> None:
        """Run the HTTP decision service."""
        typer.echo("error: the decision service is not built yet (see issue 5)", err=True)
        raise typer.Exit(2)
