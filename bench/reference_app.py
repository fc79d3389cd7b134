"""The minimal real-work reference of the API benchmark (issue 12, item 2).

One FastAPI endpoint doing what a recommendation must do at the least, written plainly and
fast: read the body and parse the JSON, check the API key (SHA-256 against the stored hash),
pseudonymise the citizen id (HMAC-SHA256), split off the control arm by the pseudonym's hash,
build the VW ADF example (shared line from the context, action lines cached at start-up), one
bare pylibvw ``--cb_adf`` predict over the eligible actions, the SquareCB pmf in numpy, the
top 4, an answer of the same size as the service's, and the durable write of a record of the
same size as the service's to the same kind of store:

* ``REF_STORE=redis``: awaited on the event loop through ``redis.asyncio`` (one ``XADD`` to a
  Redis with ``appendfsync always``);
* ``REF_STORE=sqlite``: one ``INSERT`` in WAL mode with ``synchronous=FULL``, in the thread
  pool (a blocking fsync must not stall the loop).

It keeps none of the service's guarantees (idempotency, audit, capacity, lifecycle,
explanations...): the ratio ``nbi / reference`` is the price of those. Served by uvicorn
exactly like the service: ``uvicorn bench.reference_app:create --factory``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

KEY_HASH = hashlib.sha256(b"dev-case-key").hexdigest()
PSEUDONYM_KEY = b"reference-pseudonym-key"
TOP = 4


def _vw_args() -> list[str]:
    from bandit.policies import make_policy

    policy: Any = make_policy("vw", seed=1)
    return list(policy._scorer_args())  # noqa: SLF001 (the same options as the service)


class _Sqlite:
    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS r (id TEXT PRIMARY KEY, record TEXT)")
        self.lock = threading.Lock()

    def write(self, event_id: str, record: str) -> None:
        with self.lock:
            self.conn.execute("INSERT INTO r VALUES (?, ?)", (event_id, record))


def create() -> FastAPI:
    """The reference app (resources open in the lifespan)."""
    from vowpalwabbit import Workspace

    from bandit.catalog import default_catalog
    from bandit.vw.examples import format_action, format_shared

    catalog = default_catalog()
    action_lines = {a.id: format_action(catalog.action(a.id)) for a in catalog}
    names = {a.id: a.name for a in catalog}
    index = {a.id: i for i, a in enumerate(catalog)}
    store_kind = os.environ.get("REF_STORE", "redis")
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["vw"] = Workspace(arg_list=_vw_args())
        if store_kind == "redis":
            import redis.asyncio

            state["redis"] = redis.asyncio.Redis.from_url(os.environ["REF_REDIS_URL"])
        else:
            state["sqlite"] = _Sqlite(os.environ["REF_SQLITE_PATH"])
        yield
        if "redis" in state:
            await state["redis"].aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/recommendations")
    async def recommend(request: Request) -> Response:
        key = request.headers.get("x-api-key", "")
        if not hmac.compare_digest(hashlib.sha256(key.encode()).hexdigest(), KEY_HASH):
            return Response(status_code=401)
        body = json.loads(await request.body())
        digest = hmac.new(PSEUDONYM_KEY, body["citizen_id"].encode(), hashlib.sha256).hexdigest()
        citizen_key = "p_" + digest
        control = int(digest[:8], 16) % 100 < 20  # noqa: PLR2004
        eligible: list[str] = body["eligible_action_ids"]
        event_id = uuid.uuid4().hex
        options: list[dict[str, Any]] = []
        pmf = np.zeros(0)
        if not control:
            vw = state["vw"]
            context = dict(body["context"])
            features = {k: v for k, v in context.items() if k != "cv_tokens" and v is not None}
            for token in context.get("cv_tokens") or ():
                features[f"cv_{token.lower()}"] = 1.0
            lines = [format_shared(features)] + [action_lines[a] for a in eligible]
            example = vw.parse(lines)
            costs = np.asarray(vw.predict(example), dtype=float)
            vw.finish_example(example)
            k = costs.shape[0]
            best = int(np.argmin(costs))
            gamma = 50.0 * np.sqrt(k) * 100.0**0.5
            pmf = 1.0 / (k + gamma * (costs - costs[best]))
            pmf[best] = 0.0
            pmf[best] = 1.0 - pmf.sum()
            top = np.argsort(-pmf)[:TOP]
            options = [
                {
                    "rank": r + 1,
                    "action_id": eligible[i],
                    "name": names[eligible[i]],
                    "probability": float(pmf[i]),
                    "expected_employment": float(1.0 / (1.0 + np.exp(costs[i]))),
                    "explanation": "x" * 1200,  # the service's option text and evidence
                }
                for r, i in enumerate(top)
            ]
        record = json.dumps(
            {
                "event_id": event_id,
                "timestamp": time.time(),
                "citizen_key": citizen_key,
                "group": "control" if control else "treatment",
                "context": body["context"],
                "eligible": base64.b64encode(
                    np.array([index[a] for a in eligible], dtype="<u2").tobytes()
                ).decode(),
                "pmf": base64.b64encode(pmf.astype("<f8").tobytes()).decode(),
                "recommended": options[0]["action_id"] if options else None,
            },
            separators=(",", ":"),
        )
        if "redis" in state:
            await state["redis"].xadd("ref:records", {"record": record})
        else:
            await run_in_threadpool(state["sqlite"].write, event_id, record)
        answer = {
            "event_id": event_id,
            "group": "control" if control else "treatment",
            "recommendation": options[0] if options else None,
            "options": options,
            "eligible_count": len(eligible),
        }
        return Response(json.dumps(answer), media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
