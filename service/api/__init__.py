"""HTTP routes, one router per resource, aggregated in :data:`api_router`."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import (
    citizen_info,
    citizens,
    decisions,
    experiment,
    health,
    models,
    outcomes,
    oversight,
    recommendations,
)


def build_router() -> APIRouter:
    """Every route of the service (``/v1/...``, health and metrics)."""
    router = APIRouter()
    for module in (
        recommendations,
        decisions,
        citizen_info,
        outcomes,
        experiment,
        models,
        oversight,
        citizens,
        health,
    ):
        router.include_router(module.router)
    return router
