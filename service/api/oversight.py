"""``GET /v1/oversight`` (admin role): caseworkers' override rates over the monitoring window.

The per-caseworker table lives here rather than in the metrics (unbounded labels); caseworkers
and job centres appear only as short pseudonyms (:mod:`service.oversight`).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from service.deps import AdminRole, RuntimeDep
from service.errors import PROBLEM_MEDIA_TYPE
from service.oversight import current_oversight, report_to_dict
from service.schemas import OversightOut

router = APIRouter(prefix="/v1/oversight", tags=["oversight"])
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": text}
    for code, text in ((401, "No or invalid API key"), (403, "Wrong role"))
}


@router.get("", response_model=OversightOut, responses=_PROBLEMS, operation_id="oversight")
def oversight(runtime: RuntimeDep, _role: AdminRole) -> OversightOut:
    """Override (non-compliance) rates per caseworker (pseudonymised), job centre, protected
    and need group and overall, over the decisions of the monitoring window; caseworkers with
    at least ``NBI_OVERSIGHT_MIN_ASSIGNMENTS`` assignments and a rate at most
    ``NBI_OVERSIGHT_LOW_OVERRIDE_RATE`` are flagged ``low_override``. Reads the window's
    records (an administrator's call). Role: admin."""
    settings = runtime.settings
    report = current_oversight(runtime.store, settings, time.time())
    data = report_to_dict(report) | {"window_days": settings.monitor_window_days}
    return OversightOut.model_validate(data)
