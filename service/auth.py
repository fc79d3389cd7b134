"""API keys per role, stored as SHA-256 hashes in the settings.

A client sends its key as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` (the form
Prometheus uses). No key: 401. A valid key of a role the route does not allow: 403. The
``admin`` role is allowed everywhere.

Every key has an id (:func:`service.config.api_key_id`: the ``name`` of a ``name:<sha256>``
entry, else ``k_`` + the first 12 hex digits of the hash), never the key itself; the checked
request carries it as ``request.state.api_key_id`` (and the role as ``request.state.role``) so
the audit trail names the key that acted.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated

from fastapi import Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.config import api_key_id, hash_api_key
from service.errors import ApiProblem

ADMIN = "admin"
_BEARER = "bearer "
AMBIGUOUS_KEY = "\x00ambiguous"
"""Stands for the key of a request that sent two different keys (``X-API-Key`` headers, bearer
tokens): never valid, as the request guard and the router could read different ones."""
AMBIGUOUS_DETAIL = "Send one API key: the request carries two different ones"


def presented_key(request: Request) -> str | None:
    """The API key sent with ``request``, if any (:data:`AMBIGUOUS_KEY`, which matches no key,
    when it sent two different keys in ``X-API-Key`` headers and bearer tokens)."""
    headers = request.headers
    bearers = [
        a[len(_BEARER) :].strip()
        for a in headers.getlist("authorization")
        if a.lower().startswith(_BEARER)
    ]
    if len({*headers.getlist("x-api-key"), *bearers}) > 1:
        return AMBIGUOUS_KEY
    key = headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith(_BEARER):
        return auth[len(_BEARER) :].strip() or None
    return None


def role_of(key: str, api_keys: Mapping[str, Sequence[str]]) -> str | None:
    """The role whose hash list contains ``key``'s hash (constant-time compare), or ``None``.

    Examples
    --------
    >>> role_of("k", {"case": [hash_api_key("k")]}), role_of("x", {"case": [hash_api_key("k")]})
    ('case', None)
    """
    found = identify(key, api_keys)
    return None if found is None else found[0]


def identify(key: str, api_keys: Mapping[str, Sequence[str]]) -> tuple[str, str] | None:
    """``(role, key id)`` of ``key`` (constant-time compare), or ``None``.

    Examples
    --------
    >>> identify("k", {"case": ["cms:" + hash_api_key("k")]})
    ('case', 'cms')
    """
    digest = hash_api_key(key)
    found = None
    for role, entries in api_keys.items():
        for entry in entries:
            if hmac.compare_digest(digest, entry[-64:]):
                found = (role, api_key_id(entry))
    return found


def authorize(request: Request, api_keys: Mapping[str, Sequence[str]], roles: Sequence[str]) -> str:
    """Return the caller's role or raise a 401/403 :class:`ApiProblem`."""
    key = presented_key(request)
    if key is None:
        raise ApiProblem(
            status.HTTP_401_UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "Send an API key in the X-API-Key header or as a bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = None if key is AMBIGUOUS_KEY else identify(key, api_keys)
    if found is None:
        raise ApiProblem(
            status.HTTP_401_UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            AMBIGUOUS_DETAIL if key is AMBIGUOUS_KEY else "The API key is not valid",
            headers={"WWW-Authenticate": "Bearer"},
        )
    role, key_id = found
    request.state.api_key_id = key_id
    request.state.role = role
    if role != ADMIN and role not in roles:
        raise ApiProblem(
            status.HTTP_403_FORBIDDEN,
            "forbidden",
            "Forbidden",
            f"This route needs one of the roles: {', '.join(roles)}",
        )
    return role


API_KEY_SCHEME = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    auto_error=False,
    description="An API key of a role the operation allows (admin is allowed everywhere).",
)
BEARER_SCHEME = HTTPBearer(
    scheme_name="BearerKey",
    auto_error=False,
    description="The same API key as a bearer token (the form Prometheus sends).",
)


def require(*roles: str) -> Callable[..., Awaitable[str]]:
    """A FastAPI dependency that admits only ``roles`` (and admin); returns the role.

    The check is a hash and a few comparisons, so the dependency is ``async`` and runs on the
    event loop (a plain ``def`` would cost a thread-pool hand-off per request). The two
    security schemes only document the key in the OpenAPI (every protected operation lists
    them as alternatives; Swagger UI's "Authorize"); :func:`authorize` does the checking.
    """

    async def dependency(
        request: Request,
        _key: Annotated[str | None, Security(API_KEY_SCHEME)],
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_SCHEME)],
    ) -> str:
        settings = request.app.state.runtime.settings
        return authorize(request, settings.api_keys, roles)

    return dependency
