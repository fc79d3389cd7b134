"""The learner worker: consumes the learning queue, updates the policy, publishes snapshots.

Delivery semantics (no loss, no double learning across crashes and restarts):

1. on start the worker loads the newest snapshot (or a fresh policy);
2. it reads its own unacknowledged messages first, then idle ones of dead consumers, then new
   ones (see :meth:`service.store.base.DecisionStore.read_learning`);
3. a learnable message (treatment, complied, not censored, with a reward) updates the policy in
   memory but is **not** acknowledged yet;
4. every ``snapshot_every`` updates or ``snapshot_seconds`` the worker publishes a snapshot and
   acknowledges exactly the messages it contains, in one atomic step when the store offers
   ``commit_learning`` (the Redis store does).

A crash before step 4 loses the in-memory updates *and* leaves their messages pending, so the
restarted worker (same consumer name) re-learns them on top of the last snapshot; a crash after
step 4 finds them acknowledged. Messages that are not learnable are acknowledged at once.
A learned message that comes back before its snapshot (it sat idle past the store's claim
time) is not learned again; it triggers an immediate snapshot instead. Keep
``snapshot_seconds`` well below the store's claim-idle time (Redis store default 60 s) so that
with several workers no other worker claims it meanwhile.
Failures are retried ``max_attempts`` times, then the message is dead-lettered; a message
delivered more than ``max_deliveries`` times (it crashed workers) is dead-lettered unread.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from bandit.catalog import Catalog
from bandit.control import Group
from bandit.errors import BanditError, InvalidInputError
from bandit.policies import Policy, policy_from_bytes
from bandit.records import DecisionRecord
from bandit.types import Decision
from service.metrics import ServiceMetrics
from service.store.base import DecisionStore, LearningMessage, ModelSnapshot

logger = logging.getLogger("nbi.learner")

_LEARN_ERRORS = (BanditError, ValueError, KeyError)


@runtime_checkable
class AtomicLearningCommit(Protocol):
    """A store that publishes a snapshot and acknowledges its messages in one step."""

    def commit_learning(self, snapshot: ModelSnapshot, message_ids: Sequence[str]) -> None:
        """Publish ``snapshot`` and acknowledge ``message_ids`` atomically."""


@runtime_checkable
class SingleWriterLease(Protocol):
    """A store that grants an expiring single-writer lease (the Redis store does)."""

    def acquire_lease(self, name: str, owner: str, ttl_ms: int) -> bool:
        """Take or renew the lease; ``False`` while someone else holds it."""

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it."""


LEASE_NAME = "learner"


@dataclass(frozen=True, slots=True)
class LearnerConfig:
    """Settings of one learner worker.

    Parameters
    ----------
    consumer
        Consumer name in the group; keep it stable across restarts of the same worker.
    batch_size
        Messages read per call.
    block_ms
        How long a read waits for new messages.
    snapshot_every, snapshot_seconds
        Publish a snapshot after this many updates or this many seconds with updates.
    max_attempts
        In-process attempts to learn one message before it is dead-lettered.
    max_deliveries
        Deliveries after which a message is dead-lettered without being processed.
    retry_backoff_seconds
        Pause between attempts (doubles each time).
    lease_ms
        Lifetime of the single-writer lease, renewed every step. Only the holder learns and
        publishes; any other worker is a hot standby, so two workers never overwrite each
        other's snapshots. Must exceed one step (``block_ms`` plus processing).
    """

    consumer: str = "learner-1"
    batch_size: int = 64
    block_ms: int = 1000
    snapshot_every: int = 100
    snapshot_seconds: float = 30.0
    max_attempts: int = 3
    max_deliveries: int = 5
    retry_backoff_seconds: float = 0.05
    lease_ms: int = 15_000

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.snapshot_every < 1 or self.max_attempts < 1:
            msg = "Expected batch_size, snapshot_every and max_attempts >= 1"
            raise InvalidInputError(msg)
        if self.max_deliveries < 1 or self.snapshot_seconds <= 0:
            msg = "Expected max_deliveries >= 1 and snapshot_seconds > 0"
            raise InvalidInputError(msg)


@dataclass
class LearnerStats:
    """Counters of one worker's lifetime (also exported as metrics by the CLI)."""

    learned: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    redelivered: int = 0
    standby_steps: int = 0
    snapshots: int = 0
    last_version: str | None = None


def is_learnable(record: DecisionRecord) -> bool:
    """Treatment, complied, not censored and rewarded: the events the policy learns from.

    Examples
    --------
    >>> from bandit.records import DecisionRecord
    >>> r = DecisionRecord("e", 0.0, "p_x", Group.TREATMENT, {}, ("a",), (1.0,), "a", 1.0,
    ...                    "v", "uniform", assigned="a", reward=1.0)
    >>> is_learnable(r), is_learnable(r.with_assignment("b", "capacity"))
    (True, False)
    """
    return skip_reason(record) is None


def skip_reason(record: DecisionRecord) -> str | None:
    """Why a settled record is not learned from (``None`` when it is learnable)."""
    if record.group is not Group.TREATMENT:
        return "control"
    if record.censored or record.reward is None:
        return "censored"
    if record.complied is None:
        return "unassigned"
    if not record.complied:
        return "not_complied"
    return None


def decision_from_record(record: DecisionRecord, catalog: Catalog) -> Decision:
    """Rebuild the policy's :class:`~bandit.types.Decision` from a stored record.

    Raises :class:`~bandit.errors.InvalidInputError` when the record has no recommendation or
    names an action the catalog does not know.
    """
    if record.recommended is None or record.propensity is None:
        msg = f"Event {record.event_id} has no recommendation to learn from"
        raise InvalidInputError(msg)
    if record.recommended not in record.eligible:
        msg = f"Event {record.event_id}: the recommendation is not among the eligible actions"
        raise InvalidInputError(msg)
    actions = tuple(catalog.action(a) for a in record.eligible)
    chosen = record.eligible.index(record.recommended)
    return Decision(
        event_id=record.event_id,
        context=dict(record.context),
        actions=actions,
        pmf=tuple(record.pmf),
        chosen=chosen,
        propensity=record.propensity,
        expected_rewards=(0.0,) * len(actions),
        model_version=record.model_version,
        policy=record.policy,
    )


@dataclass
class Learner:
    """One learner worker bound to a store, a catalog and a policy.

    Parameters
    ----------
    store
        The configured decision store.
    catalog
        Catalog used to rebuild actions from the recorded ids.
    policy_factory
        Builds a fresh policy when the store holds no snapshot yet.
    config
        Worker settings.
    on_learned
        Called with the event id after each in-memory update (tests, metrics).
    on_commit
        Called with the snapshot and the event ids it made durable.
    metrics
        Where to count updates, skips, failures, dead letters and snapshots (optional).
    """

    store: DecisionStore
    catalog: Catalog
    policy_factory: Callable[[], Policy]
    config: LearnerConfig = field(default_factory=LearnerConfig)
    on_learned: Callable[[str], None] | None = None
    on_commit: Callable[[ModelSnapshot, list[str]], None] | None = None
    metrics: ServiceMetrics | None = None
    policy: Policy | None = field(default=None, init=False)
    stats: LearnerStats = field(default_factory=LearnerStats, init=False)
    _uncommitted: dict[str, str] = field(default_factory=dict, init=False)
    _last_commit: float = field(default_factory=time.monotonic, init=False)
    _owner: str = field(default="", init=False)
    _has_lease: bool = field(default=False, init=False)

    def load(self) -> Policy:
        """Start from the newest snapshot, or from a fresh policy."""
        snapshot = self.store.latest_model()
        if snapshot is None:
            self.policy = self.policy_factory()
        else:
            self.policy = policy_from_bytes(snapshot.data)
            self.stats.last_version = snapshot.version
        self._uncommitted.clear()
        self._last_commit = time.monotonic()
        return self.policy

    def step(self, block_ms: int | None = None) -> int:
        """Read one batch, process it, publish a snapshot if due; return messages handled.

        Without the single-writer lease (another worker holds it) the step only waits.
        """
        block = self.config.block_ms if block_ms is None else block_ms
        if not self._hold_lease():
            self.stats.standby_steps += 1
            time.sleep(max(block, 50) / 1000)
            return 0
        if self.policy is None:
            self.load()
        messages = self.store.read_learning(self.config.consumer, self.config.batch_size, block)
        redelivered = False
        for message in messages:
            if message.message_id in self._uncommitted:
                # Learned, but idle long enough to be handed out again: never learn it twice,
                # and publish now so the acknowledgement stops the re-delivery.
                redelivered = True
                self.stats.redelivered += 1
                continue
            self._handle(message)
        if redelivered:
            self.commit()
        else:
            self._maybe_commit()
        if self.metrics is not None:
            self.metrics.learner_lag.set(self.store.learning_lag())
        return len(messages)

    def run(self, stop: threading.Event, *, max_idle_steps: int | None = None) -> LearnerStats:
        """Loop until ``stop`` is set (or ``max_idle_steps`` empty reads); commit on exit."""
        idle = 0
        while not stop.is_set():
            standby = self.stats.standby_steps
            handled = self.step()
            if self.stats.standby_steps != standby:
                continue  # waiting for the lease is not idleness
            idle = 0 if handled else idle + 1
            if max_idle_steps is not None and idle >= max_idle_steps:
                break
        if self._has_lease:
            self.commit()
            if isinstance(self.store, SingleWriterLease):
                self.store.release_lease(LEASE_NAME, self._owner)
            self._has_lease = False
        return self.stats

    def commit(self) -> ModelSnapshot | None:
        """Publish a snapshot of the policy and acknowledge the messages it contains."""
        self._last_commit = time.monotonic()
        if not self._uncommitted or self.policy is None:
            return None
        snapshot = ModelSnapshot(self.policy.model_version, self.policy.to_bytes(), time.time())
        message_ids = list(self._uncommitted)
        if isinstance(self.store, AtomicLearningCommit):
            self.store.commit_learning(snapshot, message_ids)
        else:
            self.store.save_model(snapshot)
            for message_id in message_ids:
                self.store.ack_learning(message_id)
        event_ids = list(self._uncommitted.values())
        self._uncommitted.clear()
        self.stats.snapshots += 1
        self.stats.last_version = snapshot.version
        if self.metrics is not None:
            self.metrics.model_snapshots.inc()
            self.metrics.set_model(
                snapshot.version, self.policy.name, self.policy.n_updates, time.time()
            )
        logger.info("published model %s with %d new updates", snapshot.version, len(event_ids))
        if self.on_commit is not None:
            self.on_commit(snapshot, event_ids)
        return snapshot

    # ------------------------------------------------------------------ internals

    def _hold_lease(self) -> bool:
        if not isinstance(self.store, SingleWriterLease):
            self._has_lease = True  # a store without leases: the operator runs one worker
            return True
        if not self._owner:
            self._owner = f"{self.config.consumer}/{uuid.uuid4().hex[:12]}"
        held = self.store.acquire_lease(LEASE_NAME, self._owner, self.config.lease_ms)
        if held and not self._has_lease:
            logger.info("learner lease acquired by %s", self._owner)
            self.policy = None  # start from the newest snapshot, whoever published it
        elif not held and self._has_lease:
            logger.warning("learner lease lost by %s; dropping unpublished updates", self._owner)
            self.policy = None
            self._uncommitted.clear()  # still pending in the store: re-delivered to the holder
        self._has_lease = held
        return held

    def _maybe_commit(self) -> None:
        due_count = len(self._uncommitted) >= self.config.snapshot_every
        due_time = time.monotonic() - self._last_commit >= self.config.snapshot_seconds
        if due_count or (due_time and self._uncommitted):
            self.commit()

    def _handle(self, message: LearningMessage) -> None:
        if message.deliveries > self.config.max_deliveries:
            self._dead_letter(message, f"delivered {message.deliveries} times")
            return
        error = ""
        pause = self.config.retry_backoff_seconds
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                self._learn(message)
            except _LEARN_ERRORS as exc:
                error = f"{type(exc).__name__}: {exc}"
                if self.metrics is not None:
                    self.metrics.learner_failures.inc()
                logger.warning(
                    "learning %s failed (attempt %d): %s", message.event_id, attempt, error
                )
                if attempt < self.config.max_attempts:
                    time.sleep(pause)
                    pause *= 2
            else:
                return
        self._dead_letter(message, error)

    def _learn(self, message: LearningMessage) -> None:
        assert self.policy is not None  # noqa: S101 (load() ran in step())
        record = self.store.get_decision(message.event_id)
        reason = skip_reason(record)
        if reason is not None:
            self.store.ack_learning(message.message_id)
            self.stats.skipped += 1
            if self.metrics is not None:
                self.metrics.learner_skipped.labels(reason).inc()
            return
        assert record.reward is not None  # noqa: S101 (is_learnable)
        decision = decision_from_record(record, self.catalog)
        self.policy.learn(decision, record.reward, propensity=record.propensity)
        self._uncommitted[message.message_id] = message.event_id
        self.stats.learned += 1
        if self.metrics is not None:
            self.metrics.learner_updates.inc()
        if self.on_learned is not None:
            self.on_learned(message.event_id)

    def _dead_letter(self, message: LearningMessage, error: str) -> None:
        self.store.dead_letter(message, error)
        self.stats.dead_lettered += 1
        if self.metrics is not None:
            self.metrics.learner_dead_letters.inc()
        logger.error("dead-lettered %s: %s", message.event_id, error)
