"""The ``nbi`` command line: one root app; each package contributes its own commands.

Sub-command modules are imported lazily inside :func:`build_app` so ``nbi --help`` is fast and
nothing heavy runs at import time.
"""

from __future__ import annotations

import importlib
import sys

import typer
import typer.main

_SUBAPPS: tuple[tuple[str, str, str], ...] = (
    # (module, attribute, kind) kind: "commands" registers the module's commands on the root;
    ("service.cli_serve", "register", "register"),
    ("service.cli_learner", "register", "register"),
    ("service.cli_models", "register", "register"),
    ("service.cli_admin", "register", "register"),
    ("simulator.cli", "register", "register"),
    ("offline_eval.cli", "register", "register"),
    ("offline_eval.cli_power", "register", "register"),
    ("offline_eval.cli_prognostic", "register", "register"),
)


def build_app() -> typer.Typer:
    """Build the root ``nbi`` Typer app with every available command."""
    app = typer.Typer(
        name="nbi",
        help="Next-best-intervention: contextual-bandit decision service for job centres.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root() -> None:
        """Next-best-intervention: contextual-bandit decision service for job centres."""

    for module_name, attr, _ in _SUBAPPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        getattr(module, attr)(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``nbi`` console script.

    Usage errors (unknown option, bad value) print one ``error: ...`` line and exit 2 instead
    of click's multi-line box, so scripts and people get the same precise message.
    """
    app = build_app()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="nbi", standalone_mode=False)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        raise SystemExit(1) from None
    except typer.TyperException as exc:
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        if message:  # empty after `nbi` alone: the help text was printed already
            sys.stderr.write(f"error: {message}\n")
        raise SystemExit(int(getattr(exc, "exit_code", 2))) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    raise SystemExit(result if isinstance(result, int) else 0)
