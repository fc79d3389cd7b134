"""Model lifecycle: candidates, approval, rollback, serving modes and the kill switch.

Every snapshot the learner publishes is a *candidate*; only the *approved* version serves.
The store holds these control values, read by every replica's :class:`LifecycleWatcher` once
per ``Settings.model_poll_seconds`` (so an admin action reaches every worker within one poll
interval; the replica that took the action applies it at once):

``approved``
    The version that serves (kept by the store however old, see ``model_keep``).
``mode``
    ``live`` (the suggestion is shown) or ``shadow`` (the policy decides and its pmf is logged,
    the response carries no suggestion; caseworkers decide as usual).
``kill``
    Kill switch: when set (``practice`` or ``shadow``) it overrides the mode at once;
    ``practice`` does not even ask the model.
``vetted:<version>``
    One marker per version that was ever approved (by an admin or by auto-approval), written
    in the same transaction as the ``approved`` pointer; markers of versions no longer kept
    are dropped at the next approval.

Cold start: with no approved version (and ``model_approval`` not ``auto``) the fresh model runs
in **shadow** mode: caseworkers work as usual, the matched decisions train the first candidate,
and an admin approves it after ``nbi models compare``. Learning always continues on the newest
candidate, whichever version serves.

Approval refuses a candidate trained with other settings and one that would move any action's
probability on the reference contexts (the most recent decisions) by more than
``Settings.change_cap`` (:class:`ChangeCapError`, 409). Rollback (also ``POST /v1/models/reload``
with a version) is exempt from the cap because it returns to a version that was vetted before:
it is refused (:class:`NotApprovedError`, 409) for a kept version that was never approved (no
``vetted:`` marker and not the approved pointer), so a candidate the gate refused cannot
reach serving that way. A store written before the markers existed knows only its approved
version as vetted: approve an older version again to make it a rollback target.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from bandit.catalog import Catalog
from bandit.errors import BanditError, ConflictError, ModelFormatError
from bandit.policies import Policy, policy_from_bytes
from bandit.records import DecisionRecord
from bandit.types import Action, FeatureValue
from service.periodic import PeriodicThread
from service.runtime import fresh_policy, model_differences
from service.store.base import ModelSnapshot

if TYPE_CHECKING:
    from service.config import Settings
    from service.runtime import Runtime

logger = logging.getLogger("nbi.lifecycle")

MODES: tuple[str, ...] = ("live", "shadow")
"""Serving modes an admin chooses."""
KILL_MODES: tuple[str, ...] = ("practice", "shadow")
"""What the kill switch serves: practice as usual (the model is not asked) or shadow."""
APPROVED, MODE, KILL = "approved", "mode", "kill"
VETTED = "vetted:"
"""Prefix of the control values that mark a version as approved at some time."""


class UnknownModelError(BanditError, LookupError):
    """The version is not among the kept snapshots (404)."""


class ChangeCapError(ConflictError):
    """An approval would move the policy by more than ``Settings.change_cap`` (409)."""


class NotApprovedError(ConflictError):
    """A rollback to a version that was never approved (409): it has to pass approval."""


class LifecycleStore(Protocol):
    """The part of a store (SQLite or Redis) the lifecycle needs."""

    def latest_model(self) -> ModelSnapshot | None:
        """The newest snapshot."""

    def get_model(self, version: str) -> ModelSnapshot | None:
        """A kept snapshot by version."""

    def model_versions(self) -> list[tuple[str, float]]:
        """Kept versions with their creation time, newest first."""

    def get_control(self) -> dict[str, str]:
        """The control values."""

    def set_control(self, values: Mapping[str, str | None]) -> None:
        """Set or (``None``) remove control values atomically."""

    def iter_records(self) -> Iterator[DecisionRecord]:
        """Every decision record, oldest first."""


@dataclass(frozen=True, slots=True)
class LifecycleState:
    """The stored control values.

    Examples
    --------
    >>> LifecycleState().serving_mode("manual"), LifecycleState().serving_mode("auto")
    ('shadow', 'live')
    >>> LifecycleState("v1", "live", "practice").serving_mode("manual")
    'practice'
    >>> s = LifecycleState.from_control({"approved": "v2", "vetted:v1": "approve"})
    >>> s.was_approved("v1"), s.was_approved("v2"), s.was_approved("v3")
    (True, True, False)
    """

    approved: str | None = None
    mode: str = "live"
    kill: str | None = None
    vetted: frozenset[str] = frozenset()
    """Versions with a ``vetted:`` marker (approved at some time)."""

    @classmethod
    def from_control(cls, values: Mapping[str, str]) -> LifecycleState:
        """Read the store's control values (unknown modes fall back to the safe side)."""
        mode = values.get(MODE, "live")
        kill = values.get(KILL) or None
        return cls(
            approved=values.get(APPROVED) or None,
            mode=mode if mode in MODES else "shadow",
            kill=None if kill is None else (kill if kill in KILL_MODES else "practice"),
            vetted=frozenset(k.removeprefix(VETTED) for k in values if k.startswith(VETTED)),
        )

    def was_approved(self, version: str) -> bool:
        """``True`` when ``version`` is approved now or was approved before (a rollback
        target)."""
        return version == self.approved or version in self.vetted

    def serving_mode(self, approval: str) -> str:
        """``live``, ``shadow`` or ``practice``: the kill switch first, then the cold start
        (no approved version: shadow unless every snapshot is auto-approved), then the mode."""
        if self.kill is not None:
            return self.kill
        if self.approved is None and approval != "auto":
            return "shadow"
        return self.mode


def read_state(store: LifecycleStore) -> LifecycleState:
    """The current control values of ``store``."""
    return LifecycleState.from_control(store.get_control())


def record_admin_action(
    action: str, target: str | None, *, role: str = "admin", detail: Mapping[str, str] | None = None
) -> None:
    """Record one admin action (approve, rollback, mode change, kill switch).

    For now a structured log line of the service logger (versions and modes only: never a
    citizen id or a key). The audit trail (issue 9, item 3) hooks in here: append an entry
    ``(actor key id, role, action, target, time)`` to the hash chain.
    """
    logger.info(
        "admin action",
        extra={"action": action, "target": target or "", "role": role, **dict(detail or {})},
    )


# ---------------------------------------------------------------------- change cap

Reference = tuple[Mapping[str, FeatureValue], tuple[Action, ...]]


def reference_contexts(store: LifecycleStore, catalog: Catalog, n: int) -> list[Reference]:
    """Contexts and eligible offers of the ``n`` most recent decisions with a pmf."""
    recent: deque[DecisionRecord] = deque(maxlen=n)
    for record in store.iter_records():
        if record.pmf:
            recent.append(record)
    out: list[Reference] = []
    for record in recent:
        try:
            actions = tuple(catalog.action(a) for a in record.eligible)
        except (BanditError, KeyError):
            continue  # an offer no longer in the catalog
        out.append((record.context, actions))
    return out


def policy_change(old: Policy, new: Policy, contexts: Sequence[Reference]) -> float:
    """Largest absolute change of any action's probability over ``contexts`` (0 if none).

    Examples
    --------
    >>> from bandit.policies import make_policy
    >>> from bandit.catalog import default_catalog
    >>> actions = tuple(i.as_action() for i in list(default_catalog())[:3])
    >>> policy_change(make_policy("uniform"), make_policy("uniform"), [({}, actions)])
    0.0
    """
    largest = 0.0
    for context, actions in contexts:
        diff = abs(new.probabilities(context, actions) - old.probabilities(context, actions))
        largest = max(largest, float(diff.max()))
    return largest


# ---------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class ApprovalResult:
    """What an approval or rollback did."""

    action: str
    version: str
    previous: str | None
    max_change: float | None
    """Largest probability change on the reference contexts (``None``: not computed)."""
    reference_contexts: int


def approval_detail(result: ApprovalResult) -> dict[str, str]:
    """The audit-trail detail of an approval or rollback: the version it replaced and, when
    computed, the largest probability change on the reference contexts."""
    detail = {"previous": result.previous or "none"}
    if result.max_change is not None:
        detail["max_change"] = f"{result.max_change:.4f}"
    return detail


def load_snapshot_policy(store: LifecycleStore, version: str) -> Policy:
    """The policy of a kept snapshot.

    Raises
    ------
    UnknownModelError
        When ``version`` is not kept.
    """
    snapshot = store.get_model(version)
    if snapshot is None:
        kept = ", ".join(v for v, _ in store.model_versions()[:5]) or "none"
        msg = f"Model version {version!r} is not kept in the store (newest kept: {kept})"
        raise UnknownModelError(msg)
    return policy_from_bytes(snapshot.data)


def serving_policy(store: LifecycleStore, settings: Settings) -> Policy:
    """The policy the approved pointer names (a fresh one when nothing is approved)."""
    approved = read_state(store).approved
    if approved is not None and store.get_model(approved) is not None:
        return load_snapshot_policy(store, approved)
    return fresh_policy(settings)


def approve(  # noqa: PLR0913 (one keyword per aspect of the action)
    store: LifecycleStore,
    settings: Settings,
    catalog: Catalog,
    version: str,
    *,
    action: str = "approve",
    check_cap: bool = True,
    role: str = "admin",
) -> ApprovalResult:
    """Make ``version`` the approved (serving) version.

    Raises
    ------
    UnknownModelError
        The version is not kept.
    ConflictError
        The snapshot was trained with other settings than the running service's.
    ChangeCapError
        ``check_cap`` and the change on the reference contexts exceeds ``change_cap``.
    """
    candidate = load_snapshot_policy(store, version)
    differences = model_differences(candidate, fresh_policy(settings))
    if differences:
        msg = (
            f"Model {version} was trained with other settings ({'; '.join(differences)}); "
            "it cannot serve this configuration"
        )
        raise ConflictError(msg)
    state = read_state(store)
    previous = state.approved
    change: float | None = None
    n_ref = 0
    if check_cap and settings.change_cap < 1.0:
        contexts = reference_contexts(store, catalog, settings.reference_contexts)
        n_ref = len(contexts)
        change = policy_change(serving_policy(store, settings), candidate, contexts)
        if change > settings.change_cap:
            msg = (
                f"Approving {version} would change an action's probability by {change:.3f} on "
                f"{n_ref} reference contexts, more than the cap NBI_CHANGE_CAP="
                f"{settings.change_cap:g}; approve an earlier candidate, or raise the cap "
                "deliberately"
            )
            record_admin_action(
                f"{action}_refused", version, role=role, detail={"max_change": f"{change:.4f}"}
            )
            raise ChangeCapError(msg)
    store.set_control({APPROVED: version, **_vetting(store, state, version, action)})
    detail = {"previous": previous or "none"}
    if change is not None:
        detail["max_change"] = f"{change:.4f}"
    record_admin_action(action, version, role=role, detail=detail)
    return ApprovalResult(action, version, previous, change, n_ref)


def _vetting(
    store: LifecycleStore, state: LifecycleState, version: str, action: str
) -> dict[str, str | None]:
    """The marker changes that go with approving ``version``: mark it (and the version it
    replaces, which was approved, e.g. in a store from before the markers) as vetted, and drop
    the markers of versions the store no longer keeps."""
    changes: dict[str, str | None] = {}
    for vetted, how in ((version, action), (state.approved, APPROVED)):
        if vetted is not None and vetted not in state.vetted:
            changes[VETTED + vetted] = how
    kept = {v for v, _ in store.model_versions()}
    for old in state.vetted - kept - {version}:
        changes[VETTED + old] = None
    return changes


def rollback(
    store: LifecycleStore, settings: Settings, catalog: Catalog, version: str
) -> ApprovalResult:
    """Serve the kept earlier ``version`` again (exempt from the change cap: it was vetted).

    Raises
    ------
    UnknownModelError
        The version is not kept.
    NotApprovedError
        The version was never approved (a candidate goes live only through :func:`approve`,
        and its change cap); nothing changes.
    ConflictError
        The snapshot was trained with other settings than the running service's.
    """
    if not read_state(store).was_approved(version):
        load_snapshot_policy(store, version)  # an unknown version is a 404 first
        record_admin_action("rollback_refused", version, detail={"reason": "never_approved"})
        msg = (
            f"Model version {version} was never approved; a rollback only returns to a version "
            f"approved before. Approve it first (POST /v1/models/{version}/approve or "
            f"nbi models approve {version}), which applies the change cap"
        )
        raise NotApprovedError(msg)
    return approve(store, settings, catalog, version, action="rollback", check_cap=False)


def set_mode(store: LifecycleStore, mode: str) -> None:
    """Switch the serving mode (``live`` or ``shadow``)."""
    if mode not in MODES:
        msg = f"Unknown mode {mode!r} (known: {', '.join(MODES)})"
        raise ValueError(msg)
    store.set_control({MODE: mode})
    record_admin_action("set_mode", mode)


def engage_kill_switch(store: LifecycleStore, serve: str = "practice") -> None:
    """Serve practice as usual (or shadow) everywhere until :func:`release_kill_switch`."""
    if serve not in KILL_MODES:
        msg = f"Unknown kill-switch mode {serve!r} (known: {', '.join(KILL_MODES)})"
        raise ValueError(msg)
    store.set_control({KILL: serve})
    record_admin_action("kill_switch", serve)


def release_kill_switch(store: LifecycleStore) -> None:
    """Return to the stored mode and approved version."""
    store.set_control({KILL: None})
    record_admin_action("kill_switch_release", None)


def on_candidate(
    store: LifecycleStore, settings: Settings, catalog: Catalog, snapshot: ModelSnapshot
) -> bool:
    """Called when the learner publishes ``snapshot``; ``True`` when it was auto-approved.

    ``manual``: it stays a candidate. ``auto``: approved unless the change cap refuses.
    ``guardrail``: approved when :func:`service.model_compare.guardrail` passes and the cap
    allows it.
    """
    if settings.model_approval == "manual":
        return False
    try:
        if settings.model_approval == "guardrail":
            from service.model_compare import guardrail

            verdict = guardrail(store, settings, catalog, snapshot.version)
            if not verdict.passed:
                logger.info("candidate %s not auto-approved: %s", snapshot.version, verdict.reason)
                return False
        approve(store, settings, catalog, snapshot.version, action="auto_approve", role="learner")
    except (ChangeCapError, ConflictError, UnknownModelError) as exc:
        logger.warning("candidate %s not auto-approved: %s", snapshot.version, exc)
        return False
    return True


# ---------------------------------------------------------------------- serving


def lifecycle_store(runtime: Runtime) -> LifecycleStore:
    """The runtime's store seen through :class:`LifecycleStore` (both stores implement it)."""
    return cast("LifecycleStore", runtime.store)


def sync(runtime: Runtime) -> bool:
    """Apply the stored control values to this replica; ``True`` when the model changed.

    Sets the serving mode and swaps in the approved version (with ``model_approval="auto"``
    and no pointer yet, e.g. a store from before the lifecycle, the newest snapshot).
    """
    store = lifecycle_store(runtime)
    settings = runtime.settings
    state = read_state(store)
    runtime.serving_mode = state.serving_mode(settings.model_approval)
    target = state.approved
    if target is None and settings.model_approval == "auto":
        versions = store.model_versions()
        target = versions[0][0] if versions else None
    if target is None or target == runtime.policy.version:
        return False
    snapshot = store.get_model(target)
    if snapshot is None:
        logger.warning("approved model %s is not in the store; serving stays as is", target)
        return False
    try:
        policy = policy_from_bytes(snapshot.data)
    except ModelFormatError:
        logger.exception("approved model %s is unreadable; serving stays as is", target)
        return False
    runtime.swap_policy(policy, snapshot.version)
    logger.info("now serving model %s", snapshot.version)
    return True


def start_serving(runtime: Runtime) -> None:
    """At start-up: serve the approved version, or the fresh model when none is approved
    (never an unapproved candidate; with ``auto`` the newest snapshot)."""
    approved = read_state(lifecycle_store(runtime)).approved
    if approved is None and runtime.settings.model_approval != "auto":
        runtime.swap_policy(fresh_policy(runtime.settings))
    sync(runtime)


class LifecycleWatcher(PeriodicThread):
    """Polls the store's control values every ``model_poll_seconds`` and applies them."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(
            name="nbi-lifecycle",
            interval=runtime.settings.model_poll_seconds,
            first_tick_at_once=False,
        )
        self.runtime = runtime

    def tick(self) -> bool:
        """One poll (see :func:`sync`)."""
        return sync(self.runtime)
