"""The request guard through the real app: key before body, 415, 413, hazardous JSON."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers.api import CASE, PROBLEM, rec_body, store_state

DEEP_NAN = b"[" * 20_000 + b"NaN" + b"]" * 20_000
DEEP = b"[" * 20_000 + b"]" * 20_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
POST_PATHS = ["/v1/recommendations", "/v1/outcomes", "/v1/decisions/e1/assignment"]


def _asgi_post(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[bytes, bytes]]:
    """Call the app's ASGI entry with a request whose body must never be read."""
    reads = 0
    answer: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        await asyncio.sleep(3600)  # a client that never sends its body
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = dict(message["headers"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/recommendations",
        "raw_path": b"/v1/recommendations",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "app": app,
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=5))
    assert reads == 0, "the body was read before the key was checked"
    return answer["status"], answer["headers"]


@pytest.mark.parametrize("key", [None, b"not-a-key"])
def test_an_unauthenticated_body_is_refused_before_a_byte_is_read(client, key):
    headers = [(b"content-type", b"application/json"), (b"content-length", b"60000")]
    if key is not None:
        headers.append((b"x-api-key", key))
    code, response_headers = _asgi_post(client.app, headers)
    assert code == 401
    assert response_headers[b"content-type"] == PROBLEM.encode()
    assert response_headers[b"connection"] == b"close"  # the unread body is not kept
    assert response_headers[b"www-authenticate"] == b"Bearer"


def test_a_valid_key_of_the_wrong_role_still_gets_403(client):
    r = client.post(
        "/v1/recommendations", json=rec_body(), headers={"X-API-Key": "dev-researcher-key"}
    )
    assert r.status_code == 403


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize("body", [DEEP_NAN, DEEP, DEEP_OBJECT], ids=["nan", "array", "object"])
def test_deeply_nested_json_is_a_4xx_never_a_500(client, path, body):
    store = client.app.state.runtime.store
    before = store_state(store)
    headers = {"content-type": "application/json"}
    unauthenticated = client.post(path, content=body, headers=headers)
    assert unauthenticated.status_code == 401
    r = client.post(path, content=body, headers={**headers, **CASE})
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["detail"] == "The JSON body is nested too deeply"
    assert store_state(store) == before


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_body_that_is_not_json_is_415(client, content_type):
    store = client.app.state.runtime.store
    before = store_state(store)
    headers = dict(CASE)
    if content_type is not None:
        headers["content-type"] = content_type
    r = client.post("/v1/recommendations", content=b'{"citizen_id": "x"}', headers=headers)
    assert r.status_code == 415 and r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["status"] == 415 and problem["type"].endswith("/unsupported-media-type")
    assert store_state(store) == before


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_with_parameters_or_other_case_is_accepted(client, content_type):
    import json

    r = client.post(
        "/v1/recommendations",
        content=json.dumps(rec_body()).encode(),
        headers={**CASE, "content-type": content_type},
    )
    assert r.status_code == 200, r.text


def test_an_oversize_body_is_413_declared_or_streamed(client):
    limit = client.app.state.runtime.settings.max_body_bytes
    big = b'{"citizen_id": "' + b"x" * limit + b'"}'
    headers = {**CASE, "content-type": "application/json"}
    declared = client.post("/v1/recommendations", content=big, headers=headers)
    assert declared.status_code == 413 and declared.headers["connection"] == "close"

    def chunks() -> Any:
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    streamed = client.post("/v1/recommendations", content=chunks(), headers=headers)
    assert streamed.status_code == 413 and streamed.headers["content-type"] == PROBLEM


def test_errors_from_the_guard_are_counted(client):
    client.post("/v1/recommendations", content=b"x", headers={**CASE, "content-type": "text/plain"})
    metrics = client.app.state.metrics
    assert metrics.errors.labels("unsupported_media_type")._value.get() >= 1


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/recommendations"), ("GET", "/v1/experiment/summary")]
)
def test_two_different_keys_are_refused_whichever_is_valid(client, method, path):
    """The guard (POST, before the body) and the router (GET) must not read different copies:
    two different keys are a 401 in any order; the same key twice is one key."""
    store = client.app.state.runtime.store
    before = store_state(store)
    body = rec_body() if method == "POST" else None
    for keys in (["dev-case-key", "dev-researcher-key"], ["dev-researcher-key", "dev-case-key"]):
        headers = [("X-API-Key", k) for k in keys]
        r = client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM, r.text
        assert "two different" in r.json()["detail"]
    mixed = {"X-API-Key": "dev-case-key", "Authorization": "Bearer dev-admin-key"}
    assert client.request(method, path, json=body, headers=mixed).status_code == 401
    assert store_state(store) == before
    key = "dev-case-key" if method == "POST" else "dev-researcher-key"  # the route's role
    same = [("X-API-Key", key), ("Authorization", f"Bearer {key}")]
    assert client.request(method, path, json=body, headers=same).status_code == 200
