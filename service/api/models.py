"""``/v1/models``: the serving model, candidates, approval, rollback, mode and kill switch.

Reading needs the researcher or case role; every change needs the admin role. A change is
written to the store and applied to this replica at once; every other replica follows within
one ``model_poll_seconds`` (see :mod:`service.lifecycle`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from service import lifecycle
from service.audit import audit_request
from service.deps import AdminRole, ModelReaderRole, RuntimeDep
from service.errors import PROBLEM_MEDIA_TYPE
from service.importance import DEFAULT_REPEATS, DEFAULT_ROUNDS, MAX_REPEATS, MAX_ROUNDS
from service.model_compare import compare
from service.runtime import Runtime
from service.schemas import ModelInfo, ReloadResponse

router = APIRouter(prefix="/v1/models", tags=["models"])


def _problems(*extra: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    pairs = ((401, "No or invalid API key"), (403, "Wrong role"), *extra)
    return {
        code: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": text} for code, text in pairs
    }


_PROBLEMS = _problems()
_APPROVAL_PROBLEMS = _problems(
    (404, "Version not kept in the store"),
    (409, "Refused: beyond the change cap, or trained with other settings"),
    (422, "Invalid version"),
)
_ROLLBACK_PROBLEMS = _problems(
    (404, "Version not kept in the store"),
    (409, "Refused: the version was never approved, or trained with other settings"),
    (422, "Invalid version"),
)
VersionPath = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9._-]{1,128}$", description="A kept model version")
]


class VersionOut(BaseModel):
    """One kept snapshot."""

    version: str
    created_at: float
    approved: bool
    vetted: bool = Field(
        description="Approved now or at some earlier time: a rollback may return to it"
    )
    serving: bool = Field(description="Served by the replica that answered")


class LifecycleOut(BaseModel):
    """Approved version, mode, kill switch and the kept snapshots (newest first)."""

    approval: str = Field(description="NBI_MODEL_APPROVAL: manual, guardrail or auto")
    approved: str | None
    serving_version: str
    serving_mode: str = Field(description="live, shadow or practice (kill switch) on this replica")
    mode: str
    kill: str | None
    versions: list[VersionOut]


class ApprovalOut(BaseModel):
    """Result of an approval or rollback."""

    action: str
    version: str
    previous: str | None
    max_change: float | None = Field(
        description="Largest change of an action's probability on the reference contexts"
    )
    reference_contexts: int
    serving_version: str


class ModeIn(BaseModel):
    """``live`` or ``shadow``."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["live", "shadow"]


class KillIn(BaseModel):
    """What the kill switch serves."""

    model_config = ConfigDict(extra="forbid")
    serve: Literal["practice", "shadow"] = "practice"


class ReloadIn(BaseModel):
    """Optional body of ``POST /v1/models/reload``: a version to roll back to."""

    model_config = ConfigDict(extra="forbid")
    version: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,128}$")


class CompareRowOut(BaseModel):
    """One policy's off-policy value on recent logged decisions."""

    name: str
    version: str
    snips: float | None
    snips_low: float | None
    snips_high: float | None
    dr: float | None
    dr_low: float | None
    dr_high: float | None
    ess: float
    n: int


class CompareOut(BaseModel):
    """Candidate, live model and practice as usual on the same recent decisions."""

    rows: list[CompareRowOut]
    logged_decisions: int
    note: str


def _state(runtime: Runtime) -> LifecycleOut:
    store = lifecycle.lifecycle_store(runtime)
    state = lifecycle.read_state(store)
    serving = runtime.policy.version or runtime.policy.get().model_version
    return LifecycleOut(
        approval=runtime.settings.model_approval,
        approved=state.approved,
        serving_version=serving,
        serving_mode=runtime.serving_mode,
        mode=state.mode,
        kill=state.kill,
        versions=[
            VersionOut(
                version=v,
                created_at=t,
                approved=v == state.approved,
                vetted=state.was_approved(v),
                serving=v == serving,
            )
            for v, t in store.model_versions()
        ],
    )


@router.get("", response_model=ModelInfo, responses=_PROBLEMS)
def model_info(runtime: RuntimeDep, _role: ModelReaderRole) -> ModelInfo:
    """The policy serving this replica and the newest stored snapshot (a candidate until
    approved). Roles: researcher, case."""
    policy = runtime.policy.get()
    latest = runtime.store.latest_model()
    return ModelInfo(
        policy=policy.name,
        model_version=runtime.policy.version or policy.model_version,
        updates=policy.n_updates,
        learning=runtime.settings.learning,
        latest_snapshot=None if latest is None else latest.version,
        floor=policy.floor,
        catalog_size=len(runtime.catalog),
    )


@router.get("/versions", response_model=LifecycleOut, responses=_PROBLEMS)
def model_versions(runtime: RuntimeDep, _role: ModelReaderRole) -> LifecycleOut:
    """Kept snapshots (candidates and the approved one), mode and kill switch. Roles:
    researcher, case."""
    return _state(runtime)


def _approval(runtime: Runtime, result: lifecycle.ApprovalResult) -> ApprovalOut:
    lifecycle.sync(runtime)
    return ApprovalOut(
        action=result.action,
        version=result.version,
        previous=result.previous,
        max_change=result.max_change,
        reference_contexts=result.reference_contexts,
        serving_version=runtime.policy.version or result.version,
    )


@router.post("/{version}/approve", response_model=ApprovalOut, responses=_APPROVAL_PROBLEMS)
def approve_model(
    version: VersionPath, request: Request, runtime: RuntimeDep, _role: AdminRole
) -> ApprovalOut:
    """Approve a kept candidate: it serves on every replica within one poll interval.
    Refused (409) when it would move an action's probability on the reference contexts by
    more than ``NBI_CHANGE_CAP``. Role: admin. Audited."""
    store = lifecycle.lifecycle_store(runtime)
    result = lifecycle.approve(store, runtime.settings, runtime.catalog, version)
    audit_request(request, "approve", version, lifecycle.approval_detail(result))
    return _approval(runtime, result)


@router.post("/{version}/rollback", response_model=ApprovalOut, responses=_ROLLBACK_PROBLEMS)
def rollback_model(
    version: VersionPath, request: Request, runtime: RuntimeDep, _role: AdminRole
) -> ApprovalOut:
    """Serve again a kept version that was approved before (``vetted`` in
    ``GET /v1/models/versions``); not subject to the change cap. A version that was
    never approved is refused (409, nothing changes): approve it instead. Role: admin.
    Audited."""
    store = lifecycle.lifecycle_store(runtime)
    result = lifecycle.rollback(store, runtime.settings, runtime.catalog, version)
    audit_request(request, "rollback", version, lifecycle.approval_detail(result))
    return _approval(runtime, result)


@router.post("/reload", response_model=ReloadResponse, responses=_ROLLBACK_PROBLEMS)
def reload_model(
    request: Request,
    runtime: RuntimeDep,
    _role: AdminRole,
    body: Annotated[ReloadIn | None, Body()] = None,
) -> ReloadResponse:
    """Apply the stored approved version now on this replica; with ``{"version": ...}`` roll
    back to that kept version first (as ``POST /v1/models/{version}/rollback``: only a version
    approved before, else 409 and nothing changes). A candidate never serves through a
    reload. Role: admin."""
    if body is not None and body.version is not None:
        store = lifecycle.lifecycle_store(runtime)
        result = lifecycle.rollback(store, runtime.settings, runtime.catalog, body.version)
        audit_request(request, "rollback", body.version, lifecycle.approval_detail(result))
    changed = lifecycle.sync(runtime)
    return ReloadResponse(
        reloaded=changed, model_version=runtime.policy.version or runtime.policy.get().model_version
    )


@router.put("/mode", response_model=LifecycleOut, responses=_problems((422, "Unknown mode")))
def set_mode(body: ModeIn, request: Request, runtime: RuntimeDep, _role: AdminRole) -> LifecycleOut:
    """Serve ``live`` (suggestions shown) or ``shadow`` (the policy decides and its pmf is
    logged; no suggestion in the response). Every replica follows within one poll interval.
    Role: admin."""
    lifecycle.set_mode(lifecycle.lifecycle_store(runtime), body.mode)
    audit_request(request, "mode", body.mode)
    lifecycle.sync(runtime)
    return _state(runtime)


@router.post("/kill", response_model=LifecycleOut, responses=_problems((422, "Unknown mode")))
def kill_switch(
    request: Request,
    runtime: RuntimeDep,
    _role: AdminRole,
    body: Annotated[KillIn | None, Body()] = None,
) -> LifecycleOut:
    """Kill switch: serve practice as usual (default; the model is not asked) or shadow on
    every replica within one poll interval, until released. Role: admin."""
    serve = "practice" if body is None else body.serve
    lifecycle.engage_kill_switch(lifecycle.lifecycle_store(runtime), serve)
    audit_request(request, "kill_switch", "deployment", {"serve": serve})
    lifecycle.sync(runtime)
    return _state(runtime)


@router.delete("/kill", response_model=LifecycleOut, responses=_PROBLEMS)
def release_kill_switch(request: Request, runtime: RuntimeDep, _role: AdminRole) -> LifecycleOut:
    """Release the kill switch: the stored mode and approved version serve again. Role: admin."""
    lifecycle.release_kill_switch(lifecycle.lifecycle_store(runtime))
    audit_request(request, "kill_switch_release", "deployment")
    lifecycle.sync(runtime)
    return _state(runtime)


@router.get("/compare", response_model=CompareOut, responses=_problems((404, "No such version")))
async def compare_models(
    runtime: RuntimeDep,
    _role: AdminRole,
    candidate: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,128}$", description="Default: newest")
    ] = None,
) -> CompareOut:
    """Off-policy comparison of the candidate (default: the newest snapshot), the live
    (approved) model and practice as usual on recent logged decisions: SNIPS and DR with 95 %
    intervals and the effective sample size. Role: admin."""
    report = await run_in_threadpool(
        compare,
        lifecycle.lifecycle_store(runtime),
        runtime.settings,
        runtime.catalog,
        candidate,
    )
    return CompareOut(
        rows=[CompareRowOut(**row.to_dict()) for row in report.rows],
        logged_decisions=report.logged_decisions,
        note=report.note,
    )


class FeatureImportanceOut(BaseModel):
    """One feature's permutation importance (mean and sd over the permutations)."""

    feature: str
    reward_change: float = Field(
        description="Mean absolute change of the expected reward of the logged offer"
    )
    reward_change_sd: float | None
    pmf_change: float = Field(description="Mean total-variation change of the pmf")
    pmf_change_sd: float | None
    top_change: float = Field(description="Share of decisions whose top offer changes")
    top_change_sd: float | None
    present: float = Field(description="Share of the decisions in which the feature is present")


class ImportanceOut(BaseModel):
    """Permutation importance of a model version, most important feature first."""

    version: str
    policy: str
    rounds: int
    repeats: int
    seed: int
    features: list[FeatureImportanceOut]
    note: str


RoundsQuery = Annotated[
    int, Query(ge=2, le=MAX_ROUNDS, description="Most recent logged decisions to use")
]
RepeatsQuery = Annotated[int, Query(ge=1, le=MAX_REPEATS, description="Permutations per feature")]
SeedQuery = Annotated[int, Query(ge=0, le=2**31 - 1, description="Seed of the permutations")]
_VERSION_PROBLEMS = _problems((404, "Version not kept in the store"), (422, "Invalid query"))


@router.get("/{version}/importance", response_model=ImportanceOut, responses=_VERSION_PROBLEMS)
async def model_importance(  # noqa: PLR0913 (path, dependencies and three knobs)
    version: VersionPath,
    runtime: RuntimeDep,
    _role: AdminRole,
    rounds: RoundsQuery = DEFAULT_ROUNDS,
    repeats: RepeatsQuery = DEFAULT_REPEATS,
    seed: SeedQuery = 0,
) -> ImportanceOut:
    """Permutation importance of each case fact for a kept version on the most recent logged
    decisions: the mean absolute change of the model's expected reward for the logged offer,
    the pmf's total-variation change and the share of changed top choices when the feature is
    shuffled across the decisions, with the sd over ``repeats`` permutations (deterministic
    for a seed). What the model relies on, not a causal effect. Role: admin."""
    from service.importance import model_importance as compute

    report = await run_in_threadpool(
        compute,
        lifecycle.lifecycle_store(runtime),
        runtime.catalog,
        version,
        rounds=rounds,
        repeats=repeats,
        seed=seed,
    )
    return ImportanceOut.model_validate(report.to_dict())


@router.get(
    "/{version}/card",
    response_class=Response,
    responses={
        **_VERSION_PROBLEMS,
        200: {"content": {"text/markdown": {}, "text/html": {}}, "description": "The card"},
    },
)
async def model_card(
    version: VersionPath,
    runtime: RuntimeDep,
    _role: AdminRole,
    format: Annotated[  # noqa: A002 (the query parameter's public name)
        Literal["markdown", "html"], Query(description="markdown (default) or html")
    ] = "markdown",
) -> Response:
    """Model card of a kept version (data window, features with their importance,
    exploration, off-policy comparison, fairness audit, known limits) as Markdown or HTML,
    as ``nbi models card`` writes it. Role: admin."""
    from service.model_card import CardStore, build_card
    from service.model_card_render import to_html, to_markdown

    card = await run_in_threadpool(
        build_card,
        cast("CardStore", runtime.store),
        runtime.settings,
        runtime.catalog,
        version,
    )
    if format == "html":
        return HTMLResponse(to_html(card))
    return PlainTextResponse(to_markdown(card), media_type="text/markdown; charset=utf-8")
