"""Reference app for the API benchmark: a plain FastAPI endpoint returning a constant.

Served by uvicorn exactly like the real service (same workers, same loopback), so the ratio
isolates the cost of our request handling.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

app = FastAPI()
_ANSWER = {"event_id": "00000000000000000000000000000000", "group": "treatment", "options": []}


@app.post("/v1/recommendations")
async def recommendations(request: Request) -> dict[str, Any]:
    """Read the body (as the real handler must) and return a constant."""
    await request.body()
    return _ANSWER
