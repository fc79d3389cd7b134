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
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from service.config import Settings

PRIVATE_UMASK = 0o077


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
        typer.echo(f"error: {describe_settings_error(exc)}", err=True)
        raise typer.Exit(2) from None
    except SettingsError as exc:
        typer.echo(f"error: {describe_source_error(exc)}", err=True)
        raise typer.Exit(2) from None


def check_startup(settings: Settings) -> None:
    """Build the catalog and a fresh policy as start-up will; exit with one line if either
    cannot be built (missing catalog file, unknown policy, parameters it does not take)."""
    from bandit.errors import BanditError, InvalidInputError
    from service.runtime import build_catalog, fresh_policy

    step = "NBI_CATALOG_PATH"
    try:
        build_catalog(settings)
        step = "NBI_POLICY / NBI_POLICY_PARAMS"
        fresh_policy(settings)
    except (BanditError, InvalidInputError, TypeError, ValueError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        typer.echo(f"error: invalid configuration: {step}: {text}", err=True)
        raise typer.Exit(2) from None
