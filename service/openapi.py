"""The OpenAPI document's shared error answers, stated once for every operation.

Every ``/v1`` operation can be answered by admission control and the request guard before its
handler runs (``service/admission.py``, ``service/guard.py``): 503 (overloaded, a model
analysis already running, or the store unreachable; ``Retry-After``), 401 (no or invalid
key) and, for an operation with a body, 400 (unreadable body), 413 (too large) and 415 (not
JSON). The routers document what their own handlers answer; this module adds those shared
answers where a router has not, so that the document lists every status the service sends.
Every error body is RFC 9457 problem JSON (:data:`~service.errors.PROBLEM_MEDIA_TYPE`), also
the 422 that FastAPI would otherwise document as ``application/json`` ``HTTPValidationError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from service.errors import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "URI of the problem kind"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong (never an input value)"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Validation errors: where (loc), what (msg) and its type",
            "items": {"type": "object"},
        },
    },
}
_PROBLEM_REF = {"schema": {"$ref": "#/components/schemas/Problem"}}
SHARED_ANSWERS: dict[str, str] = {
    "401": "No or invalid API key",
    "503": "Overloaded, another model analysis running (analysis_busy) or the store "
    "unreachable: nothing was done; retry after Retry-After seconds",
}
BODY_ANSWERS: dict[str, str] = {
    "400": "The body cannot be read (not UTF-8, nested too deeply, a number too long)",
    "413": "Body too large (NBI_MAX_BODY_BYTES)",
    "415": "Content-Type is not application/json",
}
_METHODS = frozenset({"get", "post", "put", "patch", "delete"})


def add_shared_answers(schema: dict[str, Any]) -> dict[str, Any]:
    """Document the shared error answers on every ``/v1`` operation of ``schema`` (in place).

    Parameters
    ----------
    schema
        An OpenAPI document as FastAPI generates it.

    Returns
    -------
    dict
        The same document.

    Examples
    --------
    >>> doc = {"paths": {"/v1/x": {"post": {"requestBody": {}, "responses": {}}}}}
    >>> sorted(add_shared_answers(doc)["paths"]["/v1/x"]["post"]["responses"])
    ['400', '401', '413', '415', '503']
    """
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, item in schema.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            answers = operation.setdefault("responses", {})
            shared = {**SHARED_ANSWERS, **(BODY_ANSWERS if "requestBody" in operation else {})}
            for code, description in shared.items():
                answers.setdefault(code, {"description": description})
            for code, answer in answers.items():
                if code[:1] in {"4", "5"}:  # every error is problem JSON
                    content = answer.get("content") or {}
                    given = content.get(PROBLEM_MEDIA_TYPE) or {}
                    answer["content"] = {PROBLEM_MEDIA_TYPE: given or dict(_PROBLEM_REF)}
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` add the shared error answers to FastAPI's document (built once,
    on first use, as FastAPI does)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_shared_answers(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
