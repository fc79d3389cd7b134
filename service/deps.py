"""``Annotated`` dependency aliases for the route handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.auth import require
from service.config import Settings
from service.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    """The app's runtime (built by the lifespan).

    ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency in the thread
    pool, one thread hand-off per request for a dictionary lookup.
    """
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_settings_dep(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.runtime.settings
    return settings


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CaseRole = Annotated[str, Depends(require("case"))]
ResearcherRole = Annotated[str, Depends(require("researcher"))]
ModelReaderRole = Annotated[str, Depends(require("researcher", "case"))]
AdminRole = Annotated[str, Depends(require("admin"))]
MetricsRole = Annotated[str, Depends(require("metrics"))]
