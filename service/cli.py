"""The ``nbi`` command line: one root app; each package contributes its own commands.

Sub-command modules are imported lazily inside :func:`build_app` so ``nbi --help`` is fast and
nothing heavy runs at import time.
"""

from __future__ import annotations

import importlib
import inspect
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
    rewrap_help(app)
    return app


def rewrap(text: str) -> str:
    """Help text with each paragraph on one line, so the terminal re-wraps it.

    Typer's rich help keeps a docstring's hard line breaks (in the command list and after the
    first paragraph), which break sentences in the middle at any width. A paragraph that starts
    with ``\\b`` (click's "keep as is" mark) or lists commands (a line after its first starts
    with ``nbi ``: an example) keeps its lines.

    Examples
    --------
    >>> rewrap("Summary that\\n    goes on.\\n\\n    More\\n    text.")
    'Summary that goes on.\\n\\nMore text.'
    >>> rewrap("Usage:\\n\\n\\b\\nnbi a\\nnbi b")
    'Usage:\\n\\nnbi a\\nnbi b'
    >>> rewrap("Examples:\\nnbi a --x 1\\nnbi b")
    'Examples:\\nnbi a --x 1\\nnbi b'
    """
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        if paragraph.startswith("\b"):
            paragraphs.append(paragraph.removeprefix("\b").lstrip("\n"))
        elif any(line.startswith("nbi ") for line in paragraph.splitlines()[1:]):
            paragraphs.append(paragraph)
        else:
            paragraphs.append(" ".join(line.strip() for line in paragraph.splitlines()))
    return "\n\n".join(paragraphs)


def rewrap_help(app: typer.Typer) -> None:
    """:func:`rewrap` the help of every command and group of ``app``, recursively."""
    for command in app.registered_commands:
        doc = command.help
        if doc is None and command.callback is not None:
            doc = inspect.getdoc(command.callback)
        if isinstance(doc, str):
            command.help = rewrap(doc)
    for group in app.registered_groups:
        if isinstance(group.help, str):
            group.help = rewrap(group.help)
        sub = group.typer_instance
        if sub is not None:
            if isinstance(sub.info.help, str):
                sub.info.help = rewrap(sub.info.help)
            rewrap_help(sub)


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
