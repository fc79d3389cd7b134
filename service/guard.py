"""The request guard: what every request with a body must pass before FastAPI sees it.

A pure ASGI middleware, so nothing is read or parsed for a request it refuses. In order:

1. **API key** (401): a request with a body (``POST``/``PUT``/``PATCH``) must carry a valid key
   of some role before a byte of its body is read; the route's own role check (403) follows
   in the dependency as before.
2. **Media type** (415): a non-empty body must be JSON (``application/json`` or ``+json``).
3. **Size** (413): a declared ``Content-Length`` over ``max_body_bytes`` is refused at once;
   a chunked body is refused as soon as it grows past the limit.
4. **JSON hazards** (422/400): ``NaN``/``Infinity`` are refused (422); JSON nested too deeply
   for the parser (20,000 ``[``) is a 400, never a ``RecursionError`` and a 500.

Refusals of a request whose body was not read answer with ``Connection: close``, so the server
drops the rest of the body instead of reading it. Slow or oversized request heads and bodies
that never finish are the HTTP protocol's job (:mod:`service.http_protocol`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import AMBIGUOUS_DETAIL, AMBIGUOUS_KEY, role_of
from service.errors import problem_response, scrub
from service.metrics import ServiceMetrics

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CLIENT_RECEIVE = "nbi.client_receive"
"""Scope key of the connection's own ``receive`` once the guard has read the whole body."""
_BEARER = b"bearer "
_MAX_BRACKETS = 256
"""Bodies with more brackets than this are parsed once to prove they are not too deep."""


class _NonFiniteNumberError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFiniteNumberError(name)


class _Refusal:
    """One early answer: status, problem kind, title, detail and extra headers."""

    def __init__(
        self,
        code: int,
        kind: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        self.code, self.kind, self.title, self.detail = code, kind, title, detail
        self.headers = headers or {}
        self.errors = errors


class RequestGuardMiddleware:
    """Refuse unauthenticated (401), non-JSON (415), oversize (413) and hazardous JSON bodies.

    Parameters
    ----------
    app
        The wrapped ASGI app.
    api_keys
        Role -> SHA-256 hashes of its keys (``Settings.api_keys``).
    max_body_bytes
        Largest accepted body.
    """

    def __init__(
        self, app: ASGIApp, *, api_keys: Mapping[str, Sequence[str]], max_body_bytes: int
    ) -> None:
        self.app = app
        self.api_keys = api_keys
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        head = _RequestHead.parse(scope["headers"])
        refusal = self._check_head(head)
        if refusal is not None:
            await self._reply(scope, receive, send, refusal, body_read=not head.has_body)
            return
        body = await self._read_body(receive)
        if body is None:  # the client went away: nothing to do for it
            metrics: ServiceMetrics | None = getattr(scope["app"].state, "metrics", None)
            if metrics is not None:
                metrics.shed.labels("client_gone").inc()
            return
        if isinstance(body, _Refusal):
            await self._reply(scope, receive, send, body, body_read=False)
            return
        refusal = _check_json(body)
        if refusal is not None:
            await self._reply(scope, receive, send, refusal, body_read=True)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        scope[CLIENT_RECEIVE] = receive  # admission control asks it whether the client left
        await self.app(scope, replay, send)

    def _check_head(self, head: _RequestHead) -> _Refusal | None:
        if head.key is None or role_of(head.key, self.api_keys) is None:
            if head.key is None:
                detail = "Send an API key in the X-API-Key header or as a bearer token"
            elif head.key is AMBIGUOUS_KEY:
                detail = AMBIGUOUS_DETAIL
            else:
                detail = "The API key is not valid"
            return _Refusal(
                status.HTTP_401_UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                detail,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if head.has_body and not _is_json(head.content_type):
            return _Refusal(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "Send the body as JSON with Content-Type: application/json",
                headers={"Accept-Post": "application/json"},
            )
        if head.length is not None and head.length > self.max_body_bytes:
            return self._too_large()
        return None

    def _too_large(self) -> _Refusal:
        return _Refusal(
            status.HTTP_413_CONTENT_TOO_LARGE,
            "payload_too_large",
            "Content too large",
            f"The request body exceeds {self.max_body_bytes} bytes",
        )

    async def _read_body(self, receive: Receive) -> bytes | _Refusal | None:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return self._too_large()
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        return b"".join(chunks)

    async def _reply(
        self, scope: Scope, receive: Receive, send: Send, refusal: _Refusal, *, body_read: bool
    ) -> None:
        metrics: ServiceMetrics | None = getattr(scope["app"].state, "metrics", None)
        if metrics is not None:
            metrics.errors.labels(refusal.kind).inc()
        headers = dict(refusal.headers)
        if not body_read:
            headers["Connection"] = "close"  # the server drops the unread body with the link
        response = problem_response(
            refusal.code,
            refusal.kind,
            refusal.title,
            refusal.detail,
            instance=scrub(scope["path"]),
            errors=refusal.errors,
            headers=headers,
        )
        await response(scope, receive, send)


class _RequestHead:
    """What the guard needs from the request headers (last occurrence wins)."""

    __slots__ = ("content_type", "has_body", "key", "length")

    def __init__(
        self, content_type: str, length: int | None, chunked: bool, key: str | None
    ) -> None:
        self.content_type = content_type
        self.length = length
        self.has_body = chunked or bool(length)
        self.key = key

    @classmethod
    def parse(cls, raw: Iterable[tuple[bytes, bytes]]) -> _RequestHead:
        length = content_type = api_key = bearer = b""
        chunked = False
        credentials: set[bytes] = set()  # two different keys sent: ambiguous
        for name, value in raw:
            lower = name.lower()
            if lower == b"content-length":
                length = value
            elif lower == b"content-type":
                content_type = value
            elif lower == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif lower == b"x-api-key":
                api_key = value
                credentials.add(value)
            elif lower == b"authorization" and value[:7].lower() == _BEARER:
                bearer = value[7:].strip()
                credentials.add(bearer)
        key = (api_key or bearer).decode("latin-1") or None
        if len(credentials) > 1:
            key = AMBIGUOUS_KEY
        declared = length.decode("latin-1").strip()
        return cls(
            content_type.decode("latin-1"),
            int(declared) if declared.isdigit() else None,
            chunked,
            key,
        )


def _is_json(content_type: str) -> bool:
    """Whether a ``Content-Type`` names JSON.

    Examples
    --------
    >>> [_is_json(t) for t in ("application/json", "Application/JSON; charset=utf-8",
    ...                        "application/problem+json", "text/plain", "", "application/jsonx")]
    [True, True, True, False, False, False]
    """
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _check_json(body: bytes) -> _Refusal | None:
    """422 for ``NaN``/``Infinity``, 400 for nesting deeper than the parser can go."""
    try:
        non_finite = _has_non_finite(body)
    except RecursionError:
        return _Refusal(
            status.HTTP_400_BAD_REQUEST,
            "bad_request",
            "Bad request",
            "The JSON body is nested too deeply",
        )
    if non_finite:
        return _Refusal(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "validation",
            "Invalid request",
            "JSON numbers must be finite: NaN and Infinity are not allowed",
            errors=[{"loc": ["body"], "msg": "non-finite number", "type": "finite_number"}],
        )
    return None


def body_headers(raw: Iterable[tuple[bytes, bytes]]) -> tuple[str, str]:
    """``Content-Length`` and ``Content-Type`` of a request (last one wins; ``""`` if absent).

    Examples
    --------
    >>> body_headers([(b"Content-Type", b"application/json"), (b"content-length", b"12")])
    ('12', 'application/json')
    """
    head = _RequestHead.parse(raw)
    return ("" if head.length is None else str(head.length)), head.content_type


def _has_non_finite(body: bytes) -> bool:
    """True when ``body`` is JSON with a ``NaN``/``Infinity`` constant.

    Raises :class:`RecursionError` for JSON nested too deeply to parse (checked whenever the
    body has many brackets, so such a body never reaches FastAPI's own parser either).

    Examples
    --------
    >>> _has_non_finite(b'{"a": NaN}'), _has_non_finite(b'{"a": "NaN"}'), _has_non_finite(b"{}")
    (True, False, False)
    >>> try:
    ...     _has_non_finite(b"[" * 20_000 + b"]" * 20_000)
    ... except RecursionError:
    ...     print("too deep")
    too deep
    """
    suspicious = b"\x00" in body or b"NaN" in body or b"Infinity" in body
    if not suspicious and body.count(b"[") + body.count(b"{") <= _MAX_BRACKETS:
        # Without NUL bytes the body cannot be UTF-16/32 (which ``json.loads`` would detect),
        # so a constant would have to appear as these ASCII bytes: nothing to parse for.
        return False
    try:
        json.loads(body, parse_constant=_reject_constant)
    except _NonFiniteNumberError:
        return True
    except ValueError:
        return False  # invalid JSON: FastAPI answers 422 itself
    return False
