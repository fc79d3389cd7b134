"""The learner worker: consumes the learning queue, updates the policy, publishes snapshots.

Delivery semantics (no loss, no double learning across crashes and restarts):

1. on start the worker loads the newest snapshot (or a fresh policy);
2. it reads its own unacknowledged messages first, then idle ones of dead consumers, then new
   ones (see :meth:`service.store.base.DecisionStore.read_learning`);
3. a learnable message (a treatment record whose recommendation was followed; the queue gets
   one when the assignment is stored, one when the outcome is, and one more when a late report
   replaces the horizon sweep's ``not_reported``: a ``correction``, learned only while the
   event is still open, i.e. its provisional "no job" not yet final) goes to the
   :class:`~bandit.feedback.FeedbackLearner`, which opens the event and learns its outcome per
   delay strategy, in memory; the message is **not** acknowledged yet. Whichever of an event's
   two messages first sees the stored outcome feeds it; the other one is acknowledged without
   learning (``already_learned``), so an outcome is never learned twice, whatever the order
   (the metric ``nbi_learner_updates`` counts model updates, e.g. citizen-weeks, not messages);
4. every ``snapshot_every`` updates or ``snapshot_seconds`` the worker publishes a snapshot and
   acknowledges exactly the messages it contains, in one atomic step when the store offers
   ``commit_learning`` (the Redis store does).

Single writer, fenced: only the holder of the store's learner lease learns (others are hot
standbys). Every new holding gets a larger fencing token, and with a :class:`FencedLease` store
(Redis: one Lua script; SQLite: one transaction) the snapshot write and the acknowledgements
(step 4, and the immediate ones of skipped messages) happen only while the worker's token is
current. A holder paused past its lease (GC, SIGSTOP) that wakes mid-step is refused: it
publishes and acknowledges nothing, drops its in-memory updates and stands by; its learned
messages stay pending and the current holder claims and learns them (no loss, no double
learning).

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
from bandit.engine import record_to_decision
from bandit.errors import BanditError, InvalidInputError, ModelConfigError
from bandit.feedback import DEFAULT_STRATEGY, FeedbackLearner, resolve_delay
from bandit.policies import Policy, policy_from_bytes
from bandit.records import DecisionRecord
from bandit.types import Decision
from service.metrics import ServiceMetrics
from service.outage import is_store_outage
from service.runtime import migrated_policy, model_differences
from service.store.base import DecisionStore, LearningMessage, ModelSnapshot

logger = logging.getLogger("nbi.learner")

_LEARN_ERRORS = (BanditError, ValueError, KeyError)
_SETTLED_KEY = "settled"


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


@runtime_checkable
class FencedLease(Protocol):
    """A lease with a fencing token, and a commit conditional on it (Redis and SQLite stores).

    A holder paused past its lease (GC, SIGSTOP, a slow disk) may wake up believing it still
    holds it; its writes carry its token and are refused once a newer holding exists.
    """

    def acquire_fenced_lease(self, name: str, owner: str, ttl_ms: int) -> int:
        """Take or renew the lease; its fencing token, or 0 while someone else holds it."""

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it."""

    def commit_fenced(
        self, name: str, token: int, snapshot: ModelSnapshot | None, message_ids: Sequence[str]
    ) -> bool:
        """Publish ``snapshot`` (if any) and acknowledge ``message_ids`` in one atomic step,
        only while ``token`` is current; ``False`` (nothing written) otherwise."""


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
    outage_backoff_seconds, outage_backoff_max_seconds
        While the store is unreachable, :meth:`Learner.run` waits this long before the next
        step, doubling up to the maximum, instead of exiting.
    delay_strategy, horizon_weeks, report_lag_weeks
        How outcomes reach the policy (:class:`bandit.feedback.FeedbackLearner`).
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
    outage_backoff_seconds: float = 0.5
    outage_backoff_max_seconds: float = 30.0
    lease_ms: int = 15_000
    delay_strategy: str = DEFAULT_STRATEGY.value
    horizon_weeks: int = 26
    report_lag_weeks: float = 0.0

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
    fenced_out: int = 0
    snapshots: int = 0
    last_version: str | None = None


def is_learnable(record: DecisionRecord) -> bool:
    """Treatment, complied, not censored and rewarded: the events the policy learns from.

    Examples
    --------
    >>> import dataclasses
    >>> from bandit.records import DecisionRecord
    >>> r = DecisionRecord("e", 0.0, "p_x", Group.TREATMENT, {}, ("a",), (1.0,), "a", 1.0,
    ...                    "v", "uniform", assigned="a", reward=1.0)
    >>> is_learnable(r), is_learnable(r.with_assignment("b", "capacity"))
    (True, False)
    >>> is_learnable(dataclasses.replace(r, assigned=None))
    False
    """
    return skip_reason(record) is None


def skip_reason(record: DecisionRecord) -> str | None:
    """Why a record is not learned from (``None`` when it is learnable).

    Learnable: a treatment record whose caseworker followed the recommendation. Its outcome
    may still be pending (the hazard learner learns the weeks without a job as they pass);
    a censored (dropout) outcome still tells the weeks observed.
    """
    if record.group is not Group.TREATMENT:
        return "control"
    if record.complied is None:
        return "unassigned"
    if not record.complied:
        return "not_complied"
    return None


def decision_from_record(record: DecisionRecord, catalog: Catalog) -> Decision:
    """Rebuild the policy's :class:`~bandit.types.Decision` (see
    :func:`bandit.engine.record_to_decision`)."""
    return record_to_decision(record, catalog)


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
    _unpublished_updates: int = field(default=0, init=False)
    _settled: dict[str, float] = field(default_factory=dict, init=False)
    """Events whose outcome a message fed while the event's other message was still queued
    (its outcome was stored before the learner read the assignment, or the assignment after
    the outcome). Snapshotted with the open events; cleared whenever the queue is empty."""
    feedback: FeedbackLearner | None = field(default=None, init=False)
    clock: Callable[[], float] = time.time
    param_change: str = "refuse"
    _last_commit: float = field(default_factory=time.monotonic, init=False)
    _owner: str = field(default="", init=False)
    _has_lease: bool = field(default=False, init=False)
    _token: int = field(default=0, init=False)

    def load(self) -> Policy:
        """Start from the newest snapshot (and its open events), or from a fresh policy.

        A snapshot whose parameters differ from the configured policy's is refused
        (:class:`~bandit.errors.ModelConfigError`) unless ``param_change == "restart"`` (a
        fresh policy) or ``"migrate"`` with only exploration parameters changed (the stored
        model with the configured exploration, :func:`~service.runtime.migrated_policy`).
        """
        snapshot = self.store.latest_model()
        fresh = self.policy_factory()
        strategy = resolve_delay(self.config.delay_strategy, fresh)
        policy = fresh
        if snapshot is not None:
            stored = policy_from_bytes(snapshot.data)
            differences = model_differences(stored, fresh)
            stored_strategy = stored.learning_state.get("strategy")
            strategy_changed = stored_strategy is not None and stored_strategy != strategy.value
            if strategy_changed:
                differences.append(f"delay_strategy: {stored_strategy!r} -> {strategy.value!r}")
            migrated = None
            if differences and self.param_change == "migrate" and not strategy_changed:
                migrated = migrated_policy(stored, fresh)
            if not differences:
                policy = stored
                self.stats.last_version = snapshot.version
            elif migrated is not None:
                logger.warning(
                    "stored model %s takes the configured exploration (%s); learning goes on",
                    snapshot.version,
                    "; ".join(differences),
                )
                policy = migrated
                self.stats.last_version = snapshot.version
            elif self.param_change != "restart":
                msg = (
                    f"The stored model {snapshot.version} differs from the learner's settings "
                    f"({'; '.join(differences)}); set NBI_MODEL_PARAM_CHANGE=restart to start "
                    "a fresh model (or =migrate where only exploration settings differ)"
                )
                raise ModelConfigError(msg)
        self.policy = policy
        self.feedback = FeedbackLearner(
            policy,
            strategy,
            horizon_weeks=self.config.horizon_weeks,
            lag_weeks=self.config.report_lag_weeks,
            resolve=self._resolve,
        )
        self._settled = {}
        if policy.learning_state:
            self.feedback.load_state(policy.learning_state)
            settled = policy.learning_state.get(_SETTLED_KEY) or {}
            self._settled = {str(k): float(v) for k, v in dict(settled).items()}
        self._uncommitted.clear()
        self._unpublished_updates = 0
        self._last_commit = time.monotonic()
        return self.policy

    def _resolve(self, event_id: str) -> Decision | None:
        try:
            return record_to_decision(self.store.get_decision(event_id), self.catalog)
        except _LEARN_ERRORS:
            logger.warning("open event %s can no longer be read; dropped", event_id)
            return None

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
        redelivered = self._handle_batch(messages)
        if not self._has_lease:
            return len(messages)
        assert self.feedback is not None  # noqa: S101 (load() ran)
        advanced = self.feedback.advance(self.clock())
        self._unpublished_updates += advanced
        if advanced and self.metrics is not None:
            self.metrics.learner_updates.inc(advanced)
        if redelivered:
            self.commit()
        else:
            self._maybe_commit()
        lag = self.store.learning_lag()
        if lag == 0 and self._settled and not self._uncommitted:
            # Every message published before these entries was handled: nothing can repeat them.
            self._settled.clear()
        if self.metrics is not None:
            self.metrics.learner_lag.set(lag)
        return len(messages)

    def load_when_reachable(self, stop: threading.Event) -> Policy | None:
        """:meth:`load`, waiting out a store outage with the same backoff as :meth:`run`;
        ``None`` if ``stop`` was set first."""
        pause = self.config.outage_backoff_seconds
        while not stop.is_set():
            try:
                return self.load()
            except Exception as exc:  # noqa: BLE001 (re-raised unless an outage)
                pause = self._wait_out_outage(exc, pause, stop)
        return None

    def _wait_out_outage(self, exc: Exception, pause: float, stop: threading.Event) -> float:
        """Re-raise ``exc`` unless it says the store is unreachable; otherwise log it, wait
        ``pause`` seconds (or until ``stop``) and return the next pause (doubled, capped)."""
        if not is_store_outage(exc):
            raise exc
        logger.warning("store unreachable (%s); retrying in %.1f s", exc, pause)
        stop.wait(pause)
        return min(pause * 2, self.config.outage_backoff_max_seconds)

    def run(self, stop: threading.Event, *, max_idle_steps: int | None = None) -> LearnerStats:
        """Loop until ``stop`` is set (or ``max_idle_steps`` empty reads); commit on exit."""
        idle = 0
        pause = self.config.outage_backoff_seconds
        while not stop.is_set():
            standby = self.stats.standby_steps
            try:
                handled = self.step()
            except Exception as exc:  # noqa: BLE001 (re-raised unless an outage)
                # The store is unreachable: nothing was acknowledged, the messages stay
                # pending. Wait (doubling, capped) and go on; the lease decides who resumes.
                pause = self._wait_out_outage(exc, pause, stop)
                if self.metrics is not None:
                    self.metrics.learner_failures.inc()
                # a batch may have been cut short: its rest is pending at this consumer; read
                # it again first (learned ones are recognised) instead of waiting for the claim
                self.store.reread_own_learning(self.config.consumer)
                continue
            pause = self.config.outage_backoff_seconds
            if self.stats.standby_steps != standby:
                continue  # waiting for the lease is not idleness
            idle = 0 if handled else idle + 1
            if max_idle_steps is not None and idle >= max_idle_steps:
                break
        self.finish()
        return self.stats

    def finish(self) -> None:
        """Publish what is pending (if this worker holds the lease) and give the lease up,
        so a standby (or this process restarted) takes over at once."""
        if self._has_lease:
            self.commit()
        if self._has_lease and isinstance(self.store, (FencedLease, SingleWriterLease)):
            self.store.release_lease(LEASE_NAME, self._owner)
        self._has_lease = False

    def commit(self) -> ModelSnapshot | None:
        """Publish a snapshot of the policy and acknowledge the messages it contains."""
        self._last_commit = time.monotonic()
        if not (self._uncommitted or self._unpublished_updates) or self.policy is None:
            return None
        if self.feedback is not None:
            self.policy.learning_state = {
                **self.feedback.state(),
                _SETTLED_KEY: dict(self._settled),
            }
        snapshot = ModelSnapshot(self.policy.model_version, self.policy.to_bytes(), time.time())
        self._unpublished_updates = 0
        message_ids = list(self._uncommitted)
        if isinstance(self.store, FencedLease):
            if not self.store.commit_fenced(LEASE_NAME, self._token, snapshot, message_ids):
                self._fenced_out("publish")
                return None
        elif isinstance(self.store, AtomicLearningCommit):
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
        if isinstance(self.store, FencedLease):
            return self._hold_fenced_lease(self.store)
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

    def _handle_batch(self, messages: Sequence[LearningMessage]) -> bool:
        """Handle a batch; ``True`` if a message learned but not yet published came back."""
        redelivered = False
        for message in messages:
            if not self._has_lease:
                break  # fenced out mid-batch: the rest stays pending for the current holder
            if message.message_id in self._uncommitted:
                # Learned, but idle long enough to be handed out again: never learn it twice,
                # and publish now so the acknowledgement stops the re-delivery.
                redelivered = True
                self.stats.redelivered += 1
                continue
            self._handle(message)
        return redelivered

    def _hold_fenced_lease(self, store: FencedLease) -> bool:
        if not self._owner:
            self._owner = f"{self.config.consumer}/{uuid.uuid4().hex[:12]}"
        token = store.acquire_fenced_lease(LEASE_NAME, self._owner, self.config.lease_ms)
        if token and token != self._token:
            if self._has_lease:  # it lapsed and came back: someone may have published since
                logger.warning(
                    "learner lease of %s lapsed; dropping unpublished updates", self._owner
                )
            logger.info("learner lease acquired by %s (fencing token %d)", self._owner, token)
            self._drop_unpublished()  # start from the newest snapshot, whoever published it
        elif not token and self._has_lease:
            logger.warning("learner lease lost by %s; dropping unpublished updates", self._owner)
            self._drop_unpublished()
        self._token = token
        self._has_lease = token > 0
        return self._has_lease

    def _drop_unpublished(self) -> None:
        """Forget the in-memory model; its messages are still pending in the store and are
        re-delivered (claimed after the store's idle time) to the current holder."""
        self.policy = None
        self.feedback = None
        self._uncommitted.clear()
        self._unpublished_updates = 0

    def _fenced_out(self, what: str) -> None:
        """A newer lease holding exists: our write was refused; stand by from now on."""
        logger.warning(
            "learner %s (fencing token %d) is stale: %s refused, %d learned messages left "
            "pending for the current holder",
            self._owner,
            self._token,
            what,
            len(self._uncommitted),
        )
        self.stats.fenced_out += 1
        self._drop_unpublished()
        self._has_lease = False
        self._token = 0

    def _maybe_commit(self) -> None:
        pending = len(self._uncommitted) + self._unpublished_updates
        due_count = pending >= self.config.snapshot_every
        due_time = time.monotonic() - self._last_commit >= self.config.snapshot_seconds
        if due_count or (due_time and pending):
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
            self._skip(message, reason)
            return
        assert self.feedback is not None  # noqa: S101 (load() ran)
        if message.kind == "correction" and not self.feedback.is_open(record.event_id):
            # A late report replacing the sweep's "not reported": learned below while the
            # event is open (the provisional "no job" not yet final); otherwise the event was
            # learned already (or will be, from its assignment message, with this outcome).
            self._skip(message, "late_correction")
            return
        decision = decision_from_record(record, self.catalog)
        if record.outcome is not None and record.event_id in self._settled:
            # The event's other message: its outcome is already learned (or waiting for its
            # release). Acknowledged at once like any skip: should the in-memory learning of
            # the first message be lost, that message is still pending and comes back. The
            # mark goes only once the acknowledgement is written: if the store fails first
            # (an outage), this message comes back and must still be recognised.
            self._skip(message, "already_learned")
            self._settled.pop(record.event_id, None)
            return
        open_before = self.feedback.open_count
        self.feedback.on_followed(decision, timestamp=record.timestamp)
        updates = 0
        if record.outcome is not None:
            if self.feedback.open_count > open_before:
                # Not open yet, so the event's other message is still in the queue.
                self._settled[record.event_id] = self.clock()
            updates = self.feedback.on_outcome(record.event_id, record.outcome, self.clock())
        self._unpublished_updates += updates
        self._uncommitted[message.message_id] = message.event_id
        self.stats.learned += 1
        if self.metrics is not None:
            self.metrics.learner_updates.inc(updates)
        if self.on_learned is not None:
            self.on_learned(message.event_id)

    def _skip(self, message: LearningMessage, reason: str) -> None:
        """Acknowledge a message that teaches nothing (now) and count why."""
        if isinstance(self.store, FencedLease):
            if not self.store.commit_fenced(LEASE_NAME, self._token, None, [message.message_id]):
                self._fenced_out("acknowledgement")
                return
        else:
            self.store.ack_learning(message.message_id)
        self.stats.skipped += 1
        if self.metrics is not None:
            self.metrics.learner_skipped.labels(reason).inc()

    def _dead_letter(self, message: LearningMessage, error: str) -> None:
        self.store.dead_letter(message, error)
        self.stats.dead_lettered += 1
        if self.metrics is not None:
            self.metrics.learner_dead_letters.inc()
        logger.error("dead-lettered %s: %s", message.event_id, error)
