"""Admission control (``service/admission.py``) and the store breaker (``service/outage.py``).

The queueing rules are checked on the real middleware in front of a handler the test holds
open (so "two requests at once" is exact, not a race); "no work for a client that has gone"
and the store-down answers are checked on the real app with its real store.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from service.admission import AdmissionMiddleware
from service.metrics import ServiceMetrics
from service.outage import StoreBreaker, is_store_outage


def _held_app(max_concurrent: int, max_queued: int, queue_timeout: float) -> Any:
    """An app whose ``/v1/work`` handler waits until the test releases it."""
    app = FastAPI()
    app.state.metrics = ServiceMetrics()
    app.state.release = asyncio.Event()
    app.state.started = 0

    @app.post("/v1/work")
    async def work(request: Request) -> dict[str, int]:
        await request.body()
        request.app.state.started += 1
        await request.app.state.release.wait()
        return {"ok": 1}

    @app.get("/v1/models/{version}/importance")
    async def analysis(version: str, request: Request) -> dict[str, str]:
        request.app.state.started += 1
        await request.app.state.release.wait()
        return {"version": version}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(
        AdmissionMiddleware,
        max_concurrent=max_concurrent,
        max_queued=max_queued,
        queue_timeout=queue_timeout,
    )
    return app


def _shed(app: Any, reason: str) -> float:
    value = app.state.metrics.registry.get_sample_value(
        "nbi_requests_shed_total", {"reason": reason}
    )
    return float(value or 0.0)


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    msg = "condition not reached"
    raise AssertionError(msg)


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def test_beyond_the_queue_a_request_is_refused_at_once_and_the_queued_one_runs() -> None:
    async def scenario() -> None:
        app = _held_app(max_concurrent=1, max_queued=1, queue_timeout=30.0)
        async with _client(app) as client:
            first = asyncio.create_task(client.post("/v1/work", json={}))
            await _until(lambda: app.state.started == 1)
            second = asyncio.create_task(client.post("/v1/work", json={}))
            await _until(lambda: _queued(app) == 1)
            third = await client.post("/v1/work", json={})  # queue full: refused at once
            assert third.status_code == 503
            assert third.headers["retry-after"] == "1"
            assert third.headers["content-type"] == "application/problem+json"
            assert third.json()["type"].endswith("/overloaded")
            health = await client.get("/healthz")  # never admission-controlled
            assert health.status_code == 200
            app.state.release.set()
            assert (await first).status_code == 200
            assert (await second).status_code == 200  # the queued one was admitted
            assert app.state.started == 2  # the refused one never reached the handler
            assert _shed(app, "overloaded") == 1.0

    asyncio.run(scenario())


def test_a_long_analysis_never_holds_a_decisions_slot() -> None:
    """Model analyses have their own slot and no queue: one running leaves every decision
    slot free, a second is refused at once (analysis_busy, not counted as overload)."""

    async def scenario() -> None:
        app = _held_app(max_concurrent=1, max_queued=0, queue_timeout=30.0)
        async with _client(app) as client:
            first = asyncio.create_task(client.get("/v1/models/v1/importance"))
            await _until(lambda: app.state.started == 1)
            busy = await client.get("/v1/models/v2/importance")
            assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
            assert busy.headers["content-type"] == "application/problem+json"
            assert "Another model analysis is running" in busy.json()["detail"]
            decision = asyncio.create_task(client.post("/v1/work", json={}))
            await _until(lambda: app.state.started == 2)  # admitted beside the analysis
            assert app.state.metrics.registry.get_sample_value("nbi_requests_in_flight") == 2
            app.state.release.set()
            assert (await first).status_code == 200
            assert (await decision).status_code == 200
            assert _shed(app, "analysis_busy") == 1.0
            assert _shed(app, "overloaded") == 0.0
            # the analysis slot was handed back
            assert (await client.get("/v1/models/v3/importance")).status_code == 200

    asyncio.run(scenario())


def _queued(app: Any) -> float:
    return float(app.state.metrics.registry.get_sample_value("nbi_requests_queued") or 0.0)


def test_a_request_past_its_deadline_is_refused_without_any_work() -> None:
    async def scenario() -> None:
        app = _held_app(max_concurrent=1, max_queued=10, queue_timeout=0.05)
        async with _client(app) as client:
            first = asyncio.create_task(client.post("/v1/work", json={}))
            await _until(lambda: app.state.started == 1)
            late = await client.post("/v1/work", json={})
            assert late.status_code == 503
            assert late.json()["type"].endswith("/overloaded")
            assert "waited too long" in late.json()["detail"]
            app.state.release.set()
            assert (await first).status_code == 200
            assert app.state.started == 1
            assert _shed(app, "queue_timeout") == 1.0
            assert _queued(app) == 0.0
            again = await client.post("/v1/work", json={})  # the slot was handed back
            assert again.status_code == 200

    asyncio.run(scenario())


def test_a_request_whose_client_left_while_it_waited_gets_no_work() -> None:
    from service.guard import CLIENT_RECEIVE

    async def scenario() -> None:
        app = _held_app(max_concurrent=1, max_queued=5, queue_timeout=30.0)
        async with _client(app) as client:
            first = asyncio.create_task(client.post("/v1/work", json={}))
            await _until(lambda: app.state.started == 1)
            sent: list[dict[str, Any]] = []
            body_sent = False

            async def replay() -> dict[str, Any]:  # what the guard hands on: the body
                nonlocal body_sent
                body_sent = True
                return {"type": "http.request", "body": b"{}", "more_body": False}

            async def connection() -> dict[str, Any]:  # the connection itself: gone
                return {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            scope = _scope(app, "/v1/work") | {CLIENT_RECEIVE: connection}
            queued = asyncio.create_task(app(scope, replay, send))
            await _until(lambda: _queued(app) == 1)
            app.state.release.set()
            assert (await first).status_code == 200
            await queued
            assert sent == [] and not body_sent  # no answer, the handler never ran
            assert app.state.started == 1
            assert _shed(app, "client_gone") == 1.0
            assert (await client.post("/v1/work", json={})).status_code == 200  # slot freed

    asyncio.run(scenario())


def test_slots_are_handed_over_in_arrival_order_and_never_leak() -> None:
    async def scenario() -> None:
        app = _held_app(max_concurrent=2, max_queued=50, queue_timeout=30.0)
        async with _client(app) as client:
            tasks = [asyncio.create_task(client.post("/v1/work", json={})) for _ in range(20)]
            await _until(lambda: app.state.started == 2)
            await asyncio.sleep(0.05)
            assert app.state.started == 2  # exactly max_concurrent at work
            app.state.release.set()
            statuses = [r.status_code for r in await asyncio.gather(*tasks)]
            assert statuses == [200] * 20
            in_flight = app.state.metrics.registry.get_sample_value("nbi_requests_in_flight")
            assert in_flight == 0.0
            assert _queued(app) == 0.0

    asyncio.run(scenario())


def test_the_store_breaker_opens_on_an_outage_and_closes_when_the_probe_answers() -> None:
    import redis

    answers = [False, False, True]
    breaker = StoreBreaker(lambda: answers.pop(0) if answers else True, probe_interval=0.01)
    try:
        assert is_store_outage(redis.exceptions.ConnectionError("refused"))
        assert not is_store_outage(RuntimeError("a bug, not an outage"))
        try:
            try:
                raise redis.exceptions.TimeoutError("slow")
            except redis.exceptions.TimeoutError as exc:
                raise RuntimeError("wrapped") from exc
        except RuntimeError as wrapped:
            assert is_store_outage(wrapped)  # found through the cause
        breaker.trip()
        assert breaker.is_open()
        assert breaker.retry_after_header() == "2"
        assert breaker.wait_closed(5.0)
        assert not breaker.is_open()
    finally:
        breaker.stop()


def _scope(app: Any, path: str, body: bytes = b"{}") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"t"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-api-key", b"dev-case-key"),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "app": app,
    }


def _asgi_post(app: Any, path: str, body: bytes, *, disconnect: bool) -> list[dict[str, Any]]:
    """Drive one POST through the app's ASGI interface; the client may be gone already."""
    sent: list[dict[str, Any]] = []
    scope = _scope(app, path, body)
    messages = [{"type": "http.disconnect"}] if disconnect else []
    messages.append({"type": "http.request", "body": body, "more_body": False})

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_no_decision_is_stored_for_a_client_that_has_gone(settings: Any) -> None:
    """The client disconnected while its request waited: the real app does no work for it."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.helpers.service_process import recommendation_body

    app = create_app(settings)
    with TestClient(app) as client:
        store = app.state.runtime.store
        before = sum(1 for _ in store.iter_records())
        body = json.dumps(recommendation_body(1)).encode()
        sent = _asgi_post(app, "/v1/recommendations", body, disconnect=True)
        assert not any(m["type"] == "http.response.start" for m in sent)
        assert sum(1 for _ in store.iter_records()) == before  # nothing was decided
        metrics = client.get("/metrics", headers={"X-API-Key": "dev-metrics-key"}).text
        assert 'nbi_requests_shed_total{reason="client_gone"} 1.0' in metrics
        sent = _asgi_post(app, "/v1/recommendations", body, disconnect=False)  # control
        assert sent[0]["status"] == 200
        assert sum(1 for _ in store.iter_records()) == before + 1


def test_while_the_store_is_down_requests_get_503_at_once_and_metrics_answer(
    settings: Any, tmp_path: Path
) -> None:
    """Breaker open (the probe fails): /v1 answers 503 store_unavailable with Retry-After
    without reading the body; /metrics and /healthz answer; /readyz says not ready."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from tests.helpers.service_process import recommendation_body

    app = create_app(settings.model_copy(update={"store_retry_after_seconds": 3.0}))
    with TestClient(app) as client:
        breaker = app.state.breaker
        store = app.state.runtime.store
        before = sum(1 for _ in store.iter_records())
        real_probe = breaker.probe
        breaker.probe = lambda: False  # the store "does not answer" to the probe
        breaker.trip()
        response = client.post(
            "/v1/recommendations",
            json=recommendation_body(2),
            headers={"X-API-Key": "dev-case-key"},
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "3"
        assert response.json()["type"].endswith("/store-unavailable")
        metrics = client.get("/metrics", headers={"X-API-Key": "dev-metrics-key"})
        assert metrics.status_code == 200
        assert "nbi_store_up 0.0" in metrics.text
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "store" in ready.json()["detail"]
        breaker.probe = real_probe  # the store answers again: the probe thread (every 0.5 s)
        time.sleep(0.06)  # or the next request (probes at most every 50 ms) closes the breaker
        response = client.post(
            "/v1/recommendations",
            json=recommendation_body(2),
            headers={"X-API-Key": "dev-case-key"},
        )
        assert response.status_code == 200
        assert sum(1 for _ in store.iter_records()) == before + 1
        assert not breaker.is_open()


@pytest.mark.parametrize("bad", [0, -1])
def test_admission_settings_are_validated(bad: int) -> None:
    from pydantic import ValidationError

    from service.config import Settings

    with pytest.raises(ValidationError, match="max_concurrent_requests"):
        Settings(max_concurrent_requests=bad)
