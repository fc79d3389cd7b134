"""``nbi models ...``: list, compare, approve and roll back model versions; mode and kill switch;
model cards (``nbi models card``) and feature importance (``nbi importance``).

The commands act on the configured store (``NBI_STORE``, ``NBI_SQLITE_PATH`` /
``NBI_REDIS_URL``, or the options), exactly as the admin endpoints do: every running replica
follows within one ``NBI_MODEL_POLL_SECONDS``. A refused or impossible action prints one
``error:`` line and exits 1 (bad usage: 2); the store is left as it was. A SQLite store file
that does not exist is refused, never created; an unreachable Redis or a file that is not a
store is one line too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from bandit.catalog import Catalog
    from service.config import Settings
    from service.lifecycle import LifecycleState, LifecycleStore

StoreOpt = typer.Option(
    None, "--store", help="Store backend: sqlite or redis (default: NBI_STORE, else sqlite)."
)
SqliteOpt = typer.Option(
    None,
    "--sqlite-path",
    help="The service's SQLite file; it must exist (default: NBI_SQLITE_PATH, else "
    "var/nbi.sqlite3 in the working directory).",
)
RedisOpt = typer.Option(None, "--redis-url", help="Redis URL (default: NBI_REDIS_URL).")
PrefixOpt = typer.Option(None, "--redis-prefix", help="Redis key prefix (NBI_REDIS_PREFIX).")
PlotOpt = typer.Option(None, "--plot", help="Also write a PNG plot to this file.")
ApiKeyOpt = typer.Option(
    None,
    "--api-key",
    envvar="NBI_API_KEY",
    help="An admin API key: the audit trail names its id (never the key); without one the "
    "entry names the machine's operator.",
    show_envvar=True,
)


@contextmanager
def _opened(
    store: str | None, sqlite_path: str | None, redis_url: str | None, redis_prefix: str | None
) -> Iterator[tuple[LifecycleStore, Settings, Catalog]]:
    """Settings, store and catalog; domain errors and a store that cannot be used (missing
    SQLite file, unreachable Redis, not a database) become one ``error:`` line, exit 1."""
    from bandit.errors import BanditError
    from service.cli_common import load_settings, require_store, store_errors
    from service.runtime import build_catalog
    from service.store.factory import make_store

    settings = load_settings(
        store=store, sqlite_path=sqlite_path, redis_url=redis_url, redis_prefix=redis_prefix
    )
    require_store(settings)
    with store_errors(settings):
        backend: Any = make_store(settings)
        try:
            yield backend, settings, build_catalog(settings)
        except (BanditError, ValueError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        finally:
            backend.close()


def _run(
    action: Callable[[LifecycleStore, Settings, Catalog], None],
    store: str | None,
    sqlite_path: str | None,
    redis_url: str | None,
    redis_prefix: str | None,
) -> None:
    with _opened(store, sqlite_path, redis_url, redis_prefix) as (backend, settings, catalog):
        action(backend, settings, catalog)


def _who(settings: Settings, api_key: str | None) -> tuple[str, str]:
    """The actor of a lifecycle command, checked before it changes anything: the admin key's
    id and role, or the machine's operator without a key."""
    from service.cli_admin import actor_of

    return actor_of(settings, api_key, required_role="admin")


def _audit(
    settings: Settings, who: tuple[str, str], action: str, target: str, detail: dict[str, str]
) -> None:
    """Append a lifecycle action taken on the command line to the audit trail, as the API
    does for the same action."""
    from service.audit import open_audit_trail

    actor, role = who
    trail = open_audit_trail(settings)
    try:
        trail.append(actor, role, action, target, {**detail, "via": "cli"})
    finally:
        trail.close()


def _check_output(path: Path, option: str) -> None:
    """Exit 1 with one line if ``path`` cannot be written (before any work is done)."""
    from offline_eval.cli import check_output
    from service.cli_common import fail

    try:
        check_output(path, option)
    except ValueError as exc:
        fail(str(exc), 1)


def _mark(state: LifecycleState, version: str) -> str:
    """``approved``, ``vetted`` (approved before: a rollback target) or ``candidate``, padded."""
    if version == state.approved:
        return "approved "
    return "vetted   " if state.was_approved(version) else "candidate"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def register(app: typer.Typer) -> None:  # noqa: C901 (one nested function per command)
    """Add the ``nbi models`` group to the root app."""
    models = typer.Typer(
        name="models",
        help="Model lifecycle: candidates, approval, rollback, mode and kill switch.",
        no_args_is_help=True,
    )
    app.add_typer(models)
    _register_card(models)
    _register_importance(app)
    run = _run

    @models.command("list")
    def list_models(
        store: str = StoreOpt,
        sqlite_path: str = SqliteOpt,
        redis_url: str = RedisOpt,
        redis_prefix: str = PrefixOpt,
    ) -> None:
        """Kept versions (newest first): approved (serving), vetted (approved before: a rollback
        target) or candidate; the mode and the kill switch."""
        from service.lifecycle import read_state

        def action(backend: LifecycleStore, settings: Settings, _c: Catalog) -> None:
            state = read_state(backend)
            serving = state.serving_mode(settings.model_approval)
            typer.echo(
                f"approval: {settings.model_approval}  mode: {state.mode}  "
                f"kill switch: {state.kill or 'off'}  serving: {serving}"
            )
            typer.echo(f"approved: {state.approved or 'none (cold start)'}")
            for version, created in backend.model_versions():
                typer.echo(f"{_mark(state, version)}  {version}  {_when(created)}")

        run(action, store, sqlite_path, redis_url, redis_prefix)

    @models.command("approve")
    def approve_cmd(
        version: str = typer.Argument(..., help="A kept version (see nbi models list)."),
        store: str = StoreOpt,
        sqlite_path: str = SqliteOpt,
        redis_url: str = RedisOpt,
        redis_prefix: str = PrefixOpt,
        api_key: str | None = ApiKeyOpt,
    ) -> None:
        """Approve a candidate (every replica serves it within one poll interval); audited."""
        from service.lifecycle import approval_detail, approve

        def action(backend: LifecycleStore, settings: Settings, catalog: Catalog) -> None:
            who = _who(settings, api_key)
            result = approve(backend, settings, catalog, version)
            _audit(settings, who, "approve", version, approval_detail(result))
            change = "" if result.max_change is None else f" (max change {result.max_change:.3f})"
            typer.echo(f"approved {version}{change}; was {result.previous or 'none'}")

        run(action, store, sqlite_path, redis_url, redis_prefix)

    @models.command("rollback")
    def rollback_cmd(
        version: str = typer.Argument(..., help="A kept version that was approved before."),
        store: str = StoreOpt,
        sqlite_path: str = SqliteOpt,
        redis_url: str = RedisOpt,
        redis_prefix: str = PrefixOpt,
        api_key: str | None = ApiKeyOpt,
    ) -> None:
        """Serve again a kept version that was approved before (a never-approved candidate is
        refused: approve it instead); learning continues on the newest candidate; audited."""
        from service.lifecycle import approval_detail, rollback

        def action(backend: LifecycleStore, settings: Settings, catalog: Catalog) -> None:
            who = _who(settings, api_key)
            result = rollback(backend, settings, catalog, version)
            _audit(settings, who, "rollback", version, approval_detail(result))
            typer.echo(f"rolled back to {version}; was {result.previous or 'none'}")

        run(action, store, sqlite_path, redis_url, redis_prefix)

    @models.command("mode")
    def mode_cmd(
        mode: str = typer.Argument(..., help="live or shadow."),
        store: str = StoreOpt,
        sqlite_path: str = SqliteOpt,
        redis_url: str = RedisOpt,
        redis_prefix: str = PrefixOpt,
        api_key: str | None = ApiKeyOpt,
    ) -> None:
        """Serve live (suggestions shown) or shadow (logged, not shown); audited."""
        from service.lifecycle import set_mode

        def action(backend: LifecycleStore, settings: Settings, _c: Catalog) -> None:
            who = _who(settings, api_key)
            set_mode(backend, mode)
            _audit(settings, who, "mode", mode, {})
            typer.echo(f"mode {mode}")

        run(action, store, sqlite_path, redis_url, redis_prefix)

    @models.command("kill")
    def kill_cmd(
        serve: str = typer.Option("practice", help="What to serve: practice or shadow."),
        store: str = StoreOpt,
        sqlite_path: str = SqliteOpt,
        redis_url: str = RedisOpt,
        redis_prefix: str = PrefixOpt,
        api_key: str | None = ApiKeyOpt,
    ) -> None:
        """Kill switch: practice as usual (or shadow) on every replica until released;
        audited."""
        from service.lifecycle import engage_kill_switch

        def action(backend: LifecycleStore, settings: Settings, _c: Catalog) -> None:
            who = _who(settings, api_key)
            engage_kill_switch(backend, serve)
            _audit(settings, who, "kill_switch", "deployment", {"serve": serve})
            typer.echo(f"kill switch on: serving {serve}")

        run(action, store, sqlite_path, redis_url, redis_prefix)

    @models.command("release")
    def release_cmd(
        store: str = StoreOpt,
        sqlite_path: str = SqliteOpt,
        redis_url: str = RedisOpt,
        redis_prefix: str = PrefixOpt,
        api_key: str | None = ApiKeyOpt,
    ) -> None:
        """Release the kill switch; audited."""
        from service.lifecycle import release_kill_switch

        def action(backend: LifecycleStore, settings: Settings, _c: Catalog) -> None:
            who = _who(settings, api_key)
            release_kill_switch(backend)
            _audit(settings, who, "kill_switch_release", "deployment", {})
            typer.echo("kill switch off")

        run(action, store, sqlite_path, redis_url, redis_prefix)

    @models.command("compare")
    def compare_cmd(
        candidate: str = typer.Option(None, help="Version to evaluate (default: the newest)."),
        plot: Path = PlotOpt,
        store: str = StoreOpt,
        sqlite_path: str = SqliteOpt,
        redis_url: str = RedisOpt,
        redis_prefix: str = PrefixOpt,
    ) -> None:
        """Candidate vs live model vs practice as usual on recent logged decisions (SNIPS and
        DR with 95 % intervals, effective sample size)."""
        from service.model_compare import compare, format_table, plot_compare

        if plot is not None:
            _check_output(plot, "--plot")

        def action(backend: LifecycleStore, settings: Settings, catalog: Catalog) -> None:
            report = compare(backend, settings, catalog, candidate)
            for line in format_table(report):
                typer.echo(line)
            if plot is not None:
                plot_compare(report, plot)
                typer.echo(f"plot written to {plot}")

        run(action, store, sqlite_path, redis_url, redis_prefix)


RoundsOpt = typer.Option(200, "--rounds", min=2, max=5000, help="Recent decisions to use.")
RepeatsOpt = typer.Option(5, "--repeats", min=1, max=50, help="Permutations per feature.")
SeedOpt = typer.Option(0, "--seed", help="Seed of the permutations.")


def _register_card(models: typer.Typer) -> None:
    @models.command("card")
    def card_cmd(  # noqa: PLR0913 (the card, its importance knobs and the store options)
        version: str = typer.Argument(..., help="A kept version (see nbi models list)."),
        out: Path = typer.Option(..., "--out", help="File to write: .md or .html."),  # noqa: B008
        fmt: str = typer.Option(None, "--format", help="markdown or html (default: from --out)."),
        rounds: int = RoundsOpt,
        repeats: int = RepeatsOpt,
        seed: int = SeedOpt,
        store: str = StoreOpt,
        sqlite_path: str = SqliteOpt,
        redis_url: str = RedisOpt,
        redis_prefix: str = PrefixOpt,
    ) -> None:
        """Model card of a version: data window, features with their importance, exploration,
        off-policy comparison, fairness audit and known limits, as Markdown or HTML."""
        from service.cli_common import fail
        from service.model_card import build_card
        from service.model_card_render import card_format, write_card

        if fmt is not None and fmt.lower() not in ("markdown", "md", "html"):
            fail(f"--format must be markdown or html, got {fmt!r}", 1)
        try:
            card_format(out, fmt)  # a bad format fails before the work
        except ValueError as exc:
            fail(f"--out: {exc}", 1)
        _check_output(out, "--out")

        def action(backend: LifecycleStore, settings: Settings, catalog: Catalog) -> None:
            card = build_card(
                backend,  # type: ignore[arg-type]  # both stores keep protected attributes
                settings,
                catalog,
                version,
                rounds=rounds,
                repeats=repeats,
                seed=seed,
            )
            written = write_card(card, out, fmt)
            typer.echo(f"wrote {out} ({written})")

        _run(action, store, sqlite_path, redis_url, redis_prefix)


def _chosen_version(backend: LifecycleStore, version: str | None) -> str:
    """``version``, else the approved one, else the newest kept."""
    from service.lifecycle import UnknownModelError, read_state

    chosen = version or read_state(backend).approved
    if chosen is None:
        versions = backend.model_versions()
        if not versions:
            msg = "No model version is kept in the store yet"
            raise UnknownModelError(msg)
        chosen = versions[0][0]
    return chosen


ImportanceOutOpt = typer.Option(
    None, "--out", help="Write the result as JSON (for nbi report --importance)."
)


def _register_importance(app: typer.Typer) -> None:
    @app.command("importance")
    def importance_cmd(  # noqa: PLR0913
        version: str = typer.Argument(
            None, help="A kept version (default: approved, else newest)."
        ),
        rounds: int = RoundsOpt,
        repeats: int = RepeatsOpt,
        seed: int = SeedOpt,
        out: Path = ImportanceOutOpt,
        plot: Path = PlotOpt,
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
        store: str = StoreOpt,
        sqlite_path: str = SqliteOpt,
        redis_url: str = RedisOpt,
        redis_prefix: str = PrefixOpt,
    ) -> None:
        """Permutation importance of each case fact for a model version on the most recent
        logged decisions (mean and sd over the permutations; deterministic for a seed)."""
        import base64
        import json

        from service.importance import format_importance, model_importance

        for path, option in ((out, "--out"), (plot, "--plot")):
            if path is not None:
                _check_output(path, option)

        def action(backend: LifecycleStore, _s: Settings, catalog: Catalog) -> None:
            chosen = _chosen_version(backend, version)
            report = model_importance(
                backend, catalog, chosen, rounds=rounds, repeats=repeats, seed=seed
            )
            doc = json.dumps(report.to_dict(), allow_nan=False)
            if out is not None:
                out.write_text(doc + "\n", encoding="utf-8")
            if plot is not None:
                from offline_eval.report_importance import plot_importance

                plot.write_bytes(base64.b64decode(plot_importance(report)))
            lines = [doc] if as_json else format_importance(report)
            for line in lines:
                typer.echo(line)

        _run(action, store, sqlite_path, redis_url, redis_prefix)
