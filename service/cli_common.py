"""What every long-running ``nbi`` process does first: private files, safe binding, settings.

* :func:`private_files` sets the process umask to ``0o077``: everything the service writes
  (SQLite database, WAL and shared-memory files, model files, metrics directories) is created
  ``0600`` (directories ``0700``), whatever the caller's umask.
* :func:`check_bind` refuses a non-loopback interface while ``environment="dev"``: dev mode
  accepts the published development API keys and pseudonymises with the published key.
* :func:`load_settings` turns an invalid configuration into one ``error:`` line naming the
  settings and what is wrong, never their values (a too-short secret is a secret), also when
  a JSON-valued variable (``NBI_API_KEYS``, ``NBI_POLICY_PARAMS``...) is not JSON.
* :func:`check_startup` builds what start-up would build from the settings alone (catalog,
  policy) so a bad ``NBI_CATALOG_PATH``, ``NBI_POLICY`` or ``NBI_POLICY_PARAMS`` is one line
  too, not a traceback from every worker's lifespan.
* :func:`require_store` and :func:`store_errors` are for the commands that work on an
  existing store (``nbi models``, ``audit``, ``export``, ``erase``, ``importance``): a SQLite
  file that does not exist is refused (never created), and an unreachable Redis, a file that
  is not a database or an unwritable path is one ``error:`` line, not a traceback.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.config import Settings

PRIVATE_UMASK = 0o077


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit ``code`` (2: bad usage; 1: a refused or
    impossible action, a store that cannot be used)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def private_files() -> None:
    """Create every file of this process ``0600`` and every directory ``0700``."""
    os.umask(PRIVATE_UMASK)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine.

    Examples
    --------
    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.0.0.5")]
    [True, True, True, False, False]
    """
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: may resolve to anything


def check_bind(settings: Settings, host: str, what: str = "the service") -> None:
    """Exit with one ``error:`` line (status 2) if dev mode would listen beyond loopback."""
    if settings.environment == "dev" and not is_loopback(host):
        typer.echo(
            f"error: refusing to expose {what} on {host} in dev mode (it accepts the published "
            "development keys); set NBI_ENVIRONMENT=prod with your own NBI_PSEUDONYM_KEY, "
            "NBI_EXPERIMENT_SALT and NBI_API_KEYS, or bind 127.0.0.1",
            err=True,
        )
        raise typer.Exit(2)


def describe_settings_error(exc: ValidationError) -> str:
    """One line naming each invalid setting (as its ``NBI_*`` variable) and the problem,
    without the offending values.

    Examples
    --------
    >>> try:
    ...     Settings(_env_file=None, pseudonym_key="short-secret")
    ... except ValidationError as exc:
    ...     print(describe_settings_error(exc))
    invalid configuration: NBI_PSEUDONYM_KEY: Secrets must be at least 16 bytes
    """
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(p) for p in error.get("loc", ()) if p != "__root__"]
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        name = f"NBI_{loc[0].upper()}" if loc else ""
        parts.append(f"{name}: {message}" if name else message)
    return "invalid configuration: " + "; ".join(parts)


def describe_source_error(exc: SettingsError) -> str:
    """One line for a variable the settings sources could not parse (not JSON).

    Examples
    --------
    >>> describe_source_error(SettingsError('error parsing value for field "api_keys" from source'))
    'invalid configuration: NBI_API_KEYS: not valid JSON'
    """
    found = re.search(r'field "([a-z_0-9]+)"', str(exc))
    name = f"NBI_{found.group(1).upper()}: " if found else ""
    return f"invalid configuration: {name}not valid JSON"


def load_settings(**overrides: Any) -> Settings:
    """:class:`Settings` from the environment and ``overrides``; exit with one line if invalid."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        fail(describe_settings_error(exc))
    except SettingsError as exc:
        fail(describe_source_error(exc))


def check_startup(settings: Settings) -> None:
    """Build the catalog and a fresh policy as start-up will; exit with one line if either
    cannot be built (missing catalog file, unknown policy, parameters it does not take)."""
    from bandit.errors import BanditError, InvalidInputError
    from offline_eval.cli import error_line
    from service.runtime import build_catalog, fresh_policy

    step = "NBI_CATALOG_PATH"
    try:
        build_catalog(settings)
        step = "NBI_POLICY / NBI_POLICY_PARAMS"
        fresh_policy(settings)
    except (BanditError, InvalidInputError, TypeError, ValueError) as exc:
        fail(f"invalid configuration: {step}: {error_line(exc)}")


STORE_HINT = "the store comes from NBI_STORE, NBI_SQLITE_PATH and NBI_REDIS_URL"


def require_store(settings: Settings) -> None:
    """Exit 1 with ``error: no store at <path>`` if the configured SQLite store file does not
    exist: commands on an existing store never create one (a mistyped path used to create an
    empty store, with its parent directories, and report it intact)."""
    if settings.store != "sqlite":
        return
    path = Path(settings.sqlite_path)
    if not path.is_file():
        what = "a directory" if path.is_dir() else "nothing there; nothing was created"
        fail(f"no store at {path} ({what}); check NBI_SQLITE_PATH / --sqlite-path", 1)


def redact_url(url: str) -> str:
    """``url`` without its password, for messages.

    Examples
    --------
    >>> redact_url("redis://:s3cret@cache:6379/0"), redact_url("redis://127.0.0.1:1/0")
    ('redis://:***@cache:6379/0', 'redis://127.0.0.1:1/0')
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def describe_store_error(exc: BaseException, settings: Settings) -> str | None:
    """One line for a store that cannot be used (``None``: not a store problem).

    Covers an unreachable or failing Redis, a SQLite file that is not a database (or is
    locked, read-only...) and a file or directory that cannot be read or written.
    """
    import sqlite3

    from offline_eval.cli import error_line

    if isinstance(exc, sqlite3.DatabaseError):
        text = error_line(exc)
        if "not a database" in text:
            return f"{settings.sqlite_path} is not an nbi store ({text}); check NBI_SQLITE_PATH"
        return f"cannot use the SQLite store {settings.sqlite_path}: {text}"
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import RedisError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    else:
        where = f"the Redis store at {redact_url(settings.redis_url)}"
        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            return f"cannot reach {where} ({error_line(exc)}); check NBI_REDIS_URL"
        if isinstance(exc, RedisError):
            return f"{where} refused a command: {error_line(exc)}"
    if isinstance(exc, OSError):
        return error_line(exc)
    return None


@contextmanager
def store_errors(settings: Settings, code: int = 1) -> Iterator[None]:
    """Turn a store that cannot be used (:func:`describe_store_error`) into one ``error:``
    line and exit ``code``; every other exception passes through."""
    try:
        yield
    except Exception as exc:
        line = describe_store_error(exc, settings)
        if line is None:
            raise
        fail(line, code)
