"""Every error answer as RFC 9457 problem JSON, from one place.

Domain errors of :mod:`bandit.errors` map to one HTTP status each (:data:`DOMAIN_ERRORS`);
FastAPI's validation errors and Starlette's HTTP errors are rewritten as problem JSON too.
Validation errors never echo input values (pydantic's ``input`` and ``ctx`` are dropped), and
any detail text is scrubbed of CPR-shaped numbers before it leaves the service.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from bandit.errors import (
    BanditError,
    CatalogError,
    ConflictError,
    InvalidContextError,
    InvalidInputError,
    ModelFormatError,
    NoEligibleActionError,
    SensitiveDataError,
    UnknownActionError,
    UnknownEventError,
)
from bandit.privacy import redact_cpr
from service.lifecycle import ChangeCapError, NotApprovedError, UnknownModelError
from service.metrics import ERROR_TYPES
from service.outage import is_store_outage, outage_errors

logger = logging.getLogger("nbi.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://nbi.example/problems/"

# most specific first: the first matching class wins
DOMAIN_ERRORS: tuple[tuple[type[BaseException], int, str, str], ...] = (
    (
        SensitiveDataError,
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        "sensitive_data",
        "Sensitive data in a feature",
    ),
    (UnknownActionError, status.HTTP_422_UNPROCESSABLE_CONTENT, "unknown_action", "Unknown action"),
    (
        NoEligibleActionError,
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        "no_eligible_action",
        "No eligible action",
    ),
    (
        InvalidContextError,
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        "validation",
        "Invalid citizen context",
    ),
    (CatalogError, status.HTTP_422_UNPROCESSABLE_CONTENT, "validation", "Invalid catalog"),
    (InvalidInputError, status.HTTP_422_UNPROCESSABLE_CONTENT, "validation", "Invalid input"),
    (UnknownEventError, status.HTTP_404_NOT_FOUND, "unknown_event", "Unknown event"),
    (UnknownModelError, status.HTTP_404_NOT_FOUND, "unknown_model", "Unknown model version"),
    (ChangeCapError, status.HTTP_409_CONFLICT, "change_cap", "Change cap exceeded"),
    (NotApprovedError, status.HTTP_409_CONFLICT, "conflict", "Model version never approved"),
    (ConflictError, status.HTTP_409_CONFLICT, "conflict", "Conflict"),
    (
        ModelFormatError,
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        "model_format",
        "Unreadable model snapshot",
    ),
)
_HTTP_TYPES = {
    status.HTTP_400_BAD_REQUEST: ("bad_request", "Bad request"),
    status.HTTP_401_UNAUTHORIZED: ("unauthorized", "Unauthorized"),
    status.HTTP_403_FORBIDDEN: ("forbidden", "Forbidden"),
    status.HTTP_404_NOT_FOUND: ("not_found", "Not found"),
    status.HTTP_405_METHOD_NOT_ALLOWED: ("method_not_allowed", "Method not allowed"),
    status.HTTP_413_CONTENT_TOO_LARGE: ("payload_too_large", "Content too large"),
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: ("unsupported_media_type", "Unsupported media type"),
    status.HTTP_422_UNPROCESSABLE_CONTENT: ("validation", "Invalid request"),
}


class ApiProblem(Exception):  # noqa: N818 (it is an HTTP problem, not an internal error)
    """An HTTP problem raised by the service itself (auth, readiness, size limits).

    Parameters
    ----------
    status_code
        HTTP status.
    kind
        Problem type slug (also the ``type`` label of ``nbi_errors_total``).
    title, detail
        Short summary and human-readable explanation.
    headers
        Extra response headers (e.g. ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status_code: int,
        kind: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.kind = kind
        self.title = title
        self.detail = detail
        self.headers = headers


def scrub(text: str) -> str:
    """Replace CPR-shaped digit runs with ``[redacted]``.

    Examples
    --------
    >>> scrub("Unknown action id '010190-1234'")
    "Unknown action id '[redacted]'"
    """
    return redact_cpr(text)


def problem_response(
    status_code: int,
    kind: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem-JSON response (``application/problem+json``)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind.replace("_", "-"),
        "title": title,
        "status": status_code,
        "detail": scrub(detail),
    }
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(
        body, status_code=status_code, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def count_error(request: Request, kind: str) -> None:
    """Count one error answer in ``nbi_errors_total`` (when the app has metrics)."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels(kind if kind in ERROR_TYPES else "other").inc()


def _domain_mapping(exc: BaseException) -> tuple[int, str, str]:
    for cls, code, kind, title in DOMAIN_ERRORS:
        if isinstance(exc, cls):
            return code, kind, title
    return status.HTTP_400_BAD_REQUEST, "validation", "Bad request"


UNKNOWN_FIELD = "(unknown field)"
"""Stands in ``errors[].loc`` for a field name the client invented (never echoed)."""


def instance_of(request: Request) -> str | None:
    """The problem's ``instance``: the matched route template (``/v1/decisions/{event_id}/
    assignment``), never the raw path, which may carry anything (a CPR number); ``None``
    when no route matched."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def safe_validation_errors(errors: Sequence[Any]) -> tuple[list[dict[str, Any]], bool]:
    """Validation errors without input values or invented field names; also tell whether one
    was sensitive data."""
    out = []
    sensitive = False
    for err in errors:
        cause = (err.get("ctx") or {}).get("error")
        sensitive = sensitive or isinstance(cause, SensitiveDataError)
        loc = [p for p in err.get("loc", ()) if isinstance(p, (str, int))]
        if err.get("type") == "extra_forbidden" and loc:
            loc[-1] = UNKNOWN_FIELD
        msg = _scrub_keeping_limits(str(err.get("msg", "")), err.get("ctx") or {})
        out.append({"loc": loc, "msg": msg, "type": err.get("type", "")})
    return out, sensitive


def _scrub_keeping_limits(msg: str, ctx: dict[str, Any]) -> str:
    """:func:`scrub` ``msg`` but keep the numbers of the schema's own constraints (``ctx``,
    e.g. ``le=2147483647``, which is CPR-shaped): they are no input, and the client needs them.

    Examples
    --------
    >>> _scrub_keeping_limits("Input should be less than or equal to 2147483647", {"le": 2147483647})
    'Input should be less than or equal to 2147483647'
    >>> _scrub_keeping_limits("Value error, 0101901234 is not allowed", {"error": ValueError()})
    'Value error, [redacted] is not allowed'
    """
    limits = sorted(
        {str(v) for v in ctx.values() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        key=len,
        reverse=True,
    )
    kept = msg
    for i, limit in enumerate(limits):
        kept = kept.replace(limit, f"\x00{i}\x00")
    kept = scrub(kept)
    for i, limit in enumerate(limits):
        kept = kept.replace(f"\x00{i}\x00", limit)
    return kept


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 (registered for this class)
    errors, sensitive = safe_validation_errors(exc.errors())
    kind = "sensitive_data" if sensitive else "validation"
    count_error(request, kind)
    where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
    return problem_response(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        kind,
        "Sensitive data in a feature" if sensitive else "Invalid request",
        f"The request failed validation at: {where}" if where else "The request failed validation",
        instance=instance_of(request),
        errors=errors,
    )


async def _domain_handler(request: Request, exc: Exception) -> JSONResponse:
    code, kind, title = _domain_mapping(exc)
    count_error(request, kind)
    if code >= status.HTTP_500_INTERNAL_SERVER_ERROR:
        logger.error("domain error %s: %s", type(exc).__name__, scrub(str(exc)))
    return problem_response(code, kind, title, str(exc), instance=instance_of(request))


async def _problem_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)  # noqa: S101
    count_error(request, exc.kind)
    return problem_response(
        exc.status_code,
        exc.kind,
        exc.title,
        exc.detail,
        instance=instance_of(request),
        headers=exc.headers,
    )


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    kind, title = _HTTP_TYPES.get(exc.status_code, ("other", "HTTP error"))
    count_error(request, kind)
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        headers = {**(headers or {}), "Allow": allowed_methods(request)}
    return problem_response(
        exc.status_code,
        kind,
        title,
        str(exc.detail),
        instance=instance_of(request),
        headers=headers,
    )


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a 405: every method some route serves on the request's path.

    Starlette answers a 405 from the first route whose path matches, naming that route's
    methods only; a path served by two routes (``POST`` and ``DELETE /v1/models/kill``) would
    advertise one of them.
    """
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    return ", ".join(allowed)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


STORE_UNAVAILABLE_DETAIL = "The decision store cannot be reached; nothing was stored. Retry later."


def store_unavailable_response(retry_after: str, instance: str | None) -> JSONResponse:
    """The 503 answered while the store is unreachable (``service/outage.py``)."""
    return problem_response(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "store_unavailable",
        "Store unavailable",
        STORE_UNAVAILABLE_DETAIL,
        instance=instance,
        headers={"Retry-After": retry_after},
    )


async def _outage_handler(request: Request, exc: Exception) -> JSONResponse:
    """A store outage met by a request: trip the breaker, answer 503 with ``Retry-After``."""
    count_error(request, "store_unavailable")
    breaker = getattr(request.app.state, "breaker", None)
    retry_after = "2"
    if breaker is not None:
        breaker.trip()
        retry_after = breaker.retry_after_header()
    logger.warning("store unreachable on %s (%s)", instance_of(request), type(exc).__name__)
    return store_unavailable_response(retry_after, instance_of(request))


async def _unhandled_handler(request: Request, exc: Exception) -> JSONResponse:
    if is_store_outage(exc):
        return await _outage_handler(request, exc)
    count_error(request, "internal")
    logger.error("unhandled %s on %s", type(exc).__name__, request.url.path)
    return problem_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        "internal",
        "Internal server error",
        "The service failed to handle the request; it has been logged.",
        instance=instance_of(request),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler of this module on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(ApiProblem, _problem_handler)
    app.add_exception_handler(BanditError, _domain_handler)
    app.add_exception_handler(InvalidInputError, _domain_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    for outage in outage_errors():
        app.add_exception_handler(outage, _outage_handler)
    app.add_exception_handler(Exception, _unhandled_handler)
