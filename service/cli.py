"""The ``nbi`` command line: one root app; each package contributes its own commands.

Sub-command modules are imported lazily inside :func:`build_app` so ``nbi --help`` is fast and
nothing heavy runs at import time.
"""

from __future__ import annotations

import importlib
import sys

import typer

_SUBAPPS: tuple[tuple[str, str, str], ...] = (
    # (module, attribute, kind) kind: "commands" registers the module's commands on the root;
    ("service.cli_serve", "register", "register"),
    ("service.cli_learner", "register", "register"),
    ("simulator.cli", "register", "register"),
    ("offline_eval.cli", "register", "register"),
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


def main() -> None:
    """Entry point of the ``nbi`` console script."""
    app = build_app()
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
