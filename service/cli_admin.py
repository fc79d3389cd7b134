"""Operator commands: ``nbi audit verify|show``, ``nbi erase`` and ``nbi export``.

They work on the configured store (``NBI_*`` settings, like ``nbi serve``), beside a running
service. Bad input is one ``error:`` line and exit 2; a broken audit trail is one line naming
the first bad entry and exit 1, as is a store that cannot be used (a SQLite file that does not
exist: never created; an unreachable Redis; a file that is not a database).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from service.config import Settings

OPERATOR = "operator"
"""Actor and role of a CLI action without an API key (the machine's operator)."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)


STORE_HELP = (
    "The store is the service's: NBI_STORE (sqlite, the default, or redis) with "
    "NBI_SQLITE_PATH (default var/nbi.sqlite3 in the working directory; the file must exist) "
    "or NBI_REDIS_URL and NBI_REDIS_PREFIX."
)


@contextmanager
def _opened_settings() -> Iterator[Settings]:
    """The settings of an existing store; a store that cannot be used is one line, exit 1."""
    from service.cli_common import load_settings, require_store, store_errors

    settings = load_settings()
    require_store(settings)
    with store_errors(settings):
        yield settings


@contextmanager
def _bad_input() -> Iterator[None]:
    from bandit.errors import BanditError
    from offline_eval.cli import error_line

    try:
        yield
    except (BanditError, ValueError, OSError) as exc:
        raise _fail(error_line(exc)) from None


def actor_of(
    settings: Settings, api_key: str | None, *, required_role: str | None = None
) -> tuple[str, str]:
    """``(key id, role)`` of ``api_key``, or the operator without one; exit 2 with one line
    for an invalid key or (with ``required_role``) a key of another role."""
    from service.auth import identify

    if api_key is None:
        return OPERATOR, OPERATOR
    found = identify(api_key, settings.api_keys)
    if found is None:
        raise _fail("the API key (--api-key / NBI_API_KEY) is not valid")
    if required_role is not None and found[0] != required_role:
        raise _fail(f"this action needs an {required_role} key (or none: the machine's operator)")
    return found[1], found[0]


_API_KEY = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="NBI_API_KEY",
        help="Your API key: the audit trail names its id (never the key). Without one you act "
        "as the machine's operator.",
        show_envvar=True,
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``audit``, ``erase`` and ``export`` to the root app."""
    _register_audit(app)
    _register_erase(app)
    _register_export(app)


def _register_audit(app: typer.Typer) -> None:
    audit = typer.Typer(
        help=f"The tamper-evident audit trail of the service's store.\n\n{STORE_HELP}",
        no_args_is_help=True,
    )

    @audit.command(
        "verify", help=f"Check the hash chain; exit 1 with the first bad entry.\n\n{STORE_HELP}"
    )
    def verify() -> None:
        from service.audit import open_audit_trail

        with _opened_settings() as settings:
            trail = open_audit_trail(settings)
            try:
                result = trail.verify()
            finally:
                trail.close()
        if not result.ok:
            raise _fail(result.line(), 1)
        typer.echo(result.line())

    @audit.command(
        "show", help=f"Print the entries (JSON lines), then the verification line.\n\n{STORE_HELP}"
    )
    def show(
        last: Annotated[int, typer.Option(min=0, help="Only the newest N entries (0: all).")] = 0,
    ) -> None:
        from service.audit import open_audit_trail

        with _opened_settings() as settings:
            trail = open_audit_trail(settings)
            try:
                entries = list(trail.log.stored())
                for text in entries[-last:] if last else entries:
                    typer.echo(text)
                result = trail.verify()
            finally:
                trail.close()
        if not result.ok:
            raise _fail(result.line(), 1)
        typer.echo(result.line(), err=True)

    app.add_typer(audit, name="audit")


def _register_erase(app: typer.Typer) -> None:
    @app.command(
        help="Erase every record of one citizen from the store (GDPR art. 17), audited; needs "
        f"an admin key or none (the machine's operator).\n\n{STORE_HELP}"
    )
    def erase(
        citizen_id: Annotated[str, typer.Argument(help="Raw citizen id (CPR); pseudonymised.")],
        reference: Annotated[
            str | None, typer.Option(help="Case number for the audit entry (no CPR).")
        ] = None,
        api_key: _API_KEY = None,
    ) -> None:
        from service.audit import open_audit_trail
        from service.erasure import erase_citizen, make_eraser
        from service.store.factory import make_store

        with _opened_settings() as settings, _bad_input():
            actor, role = actor_of(settings, api_key)
            if api_key is not None and role != "admin":
                raise _fail("erasure needs an admin key (or none: the machine's operator)")
            store = make_store(settings)
            trail = open_audit_trail(settings)
            eraser = make_eraser(store, settings)
            try:
                report = erase_citizen(
                    citizen_id,
                    settings=settings,
                    eraser=eraser,
                    trail=trail,
                    actor=actor,
                    role=role,
                    reference=reference,
                )
            finally:
                close = getattr(eraser, "close", None)
                if callable(close) and not hasattr(eraser, "store"):
                    close()
                trail.close()
                store.close()
        typer.echo(json.dumps(report.to_dict()))


def _register_export(app: typer.Typer) -> None:
    @app.command(
        "export",
        help="Export the service's decisions: the logged-bandit file (nbi evaluate), the trial "
        "file <stem>.rct.<suffix> (nbi experiment), the shadow-mode decisions "
        "<stem>.shadow.<suffix> with <stem>.shadow.target.npy (nbi evaluate --target-probs) "
        f"and, with --protected, the fairness file.\n\n{STORE_HELP}",
    )
    def export_cmd(  # noqa: PLR0913 (one option per choice)
        out: Annotated[Path, typer.Option("--out", help="Logged-bandit file (.parquet/.csv).")],
        since: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD, UTC).")] = None,
        until: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD, inclusive).")] = None,
        protected: Annotated[
            bool,
            typer.Option(
                "--protected",
                help="Also write <stem>.fairness.<suffix> with protected attributes "
                "(researcher key required).",
            ),
        ] = False,
        include_open: Annotated[
            bool,
            typer.Option(
                "--include-open",
                help="Trial file: add censored and still-open decisions (censored=1) for "
                "survival analysis; the ITT then differs from the interim summary.",
            ),
        ] = False,
        api_key: _API_KEY = None,
    ) -> None:
        from service.audit import open_audit_trail
        from service.export import SUFFIXES, export_records, parse_day
        from service.runtime import build_catalog
        from service.store.factory import make_store

        with _bad_input():  # bad options first (exit 2), then the store
            if out.suffix.lower() not in SUFFIXES:
                msg = f"--out must end in .parquet or .csv, got {out.name!r}"
                raise ValueError(msg)
            first, last = parse_day(since, "--since"), parse_day(until, "--until")
            if first is not None and last is not None and first > last:
                msg = "--since must not be after --until"
                raise ValueError(msg)
        with _opened_settings() as settings, _bad_input():
            actor, role = actor_of(settings, api_key)
            if protected and role != "researcher":
                raise _fail("--protected needs a researcher API key (--api-key / NBI_API_KEY)")
            store = make_store(settings)
            trail = open_audit_trail(settings)
            try:
                result = export_records(
                    store,
                    build_catalog(settings),
                    out,
                    horizon_weeks=settings.horizon_weeks,
                    since=first,
                    until=last,
                    protected=protected,
                    include_open=include_open,
                )
                trail.append(
                    actor,
                    role,
                    "export",
                    "decisions",
                    {
                        "since": since,
                        "until": until,
                        "log_rows": result.log_rows,
                        "rct_rows": result.rct_rows,
                        "shadow_rows": result.shadow_rows,
                        "protected": protected,
                        "include_open": include_open,
                    },
                )
            finally:
                trail.close()
                store.close()
        typer.echo(json.dumps(result.to_dict()))
