"""The store contract shared by the embedded (SQLite) and the Redis store.

Both implementations must pass ``tests/service/test_store_contract.py`` against a real SQLite
file and a real redis-server. The API is synchronous: FastAPI runs plain ``def`` handlers in
its thread pool, and both backends (``sqlite3``, ``redis-py``) are thread-safe when used as
documented (one connection per thread / one pool).

Durability rule: a method returns only after the data is durable (SQLite commit in WAL mode
with ``synchronous=FULL``; Redis with AOF ``appendfsync always`` in production config, or the
write is acknowledged by ``WAIT``/AOF as configured).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from bandit.context import ProtectedAttributes
from bandit.records import DecisionRecord
from bandit.rewards import Outcome, OutcomeStatus


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A stored record and whether this call changed anything (``False`` on idempotent replay)."""

    record: DecisionRecord
    changed: bool


def employed_within_horizon(reward: float | None, *, censored: bool) -> bool:
    """Whether a settled decision counts as "employed" in the experiment counters.

    The RCT outcome is a job *within the horizon*: a settled, uncensored record with a positive
    reward. A job found after the horizon settles as reward 0 and does not count.
    """
    return not censored and reward is not None and reward > 0


def publishes_assignment(record: DecisionRecord) -> bool:
    """A stored assignment goes to the learning queue when it followed a recommendation (the
    hazard learner starts counting that citizen's weeks at risk)."""
    return record.complied is True


def publishes_outcome(record: DecisionRecord) -> bool:
    """A stored outcome goes to the learning queue when its recommendation was followed, or
    before any assignment is known (the learner skips it until the assignment arrives).
    Censored outcomes are published too: the weeks observed before a dropout are data."""
    return record.recommended is not None and record.complied is not False


@dataclass(frozen=True, slots=True)
class GroupCounts:
    """Experiment counters for one RCT arm (``employed``: see :func:`employed_within_horizon`)."""

    decisions: int
    settled: int
    employed: int
    censored: int


MESSAGE_KINDS = ("assignment", "outcome", "correction")
"""What put a message on the learning queue: a followed assignment, the first outcome, or a
real report replacing the sweep's ``not_reported`` (see :func:`is_correction`)."""


@dataclass(frozen=True, slots=True)
class LearningMessage:
    """One entry of the learning queue: an event to learn from, and why it was published."""

    message_id: str
    event_id: str
    deliveries: int
    kind: str = "outcome"


def is_correction(current: Outcome | None, new: Outcome) -> bool:
    """Whether ``new`` replaces the horizon sweep's provisional ``not_reported`` (a late real
    report, accepted and audited) rather than contradicting a reported outcome (a conflict).

    Examples
    --------
    >>> from bandit.rewards import OutcomeStatus as S
    >>> is_correction(Outcome(S.NOT_REPORTED), Outcome(S.EMPLOYED, weeks_to_job=30))
    True
    >>> is_correction(Outcome(S.UNEMPLOYED_AT_HORIZON), Outcome(S.EMPLOYED, weeks_to_job=3))
    False
    """
    return (
        current is not None
        and current.status is OutcomeStatus.NOT_REPORTED
        and new.status is not OutcomeStatus.NOT_REPORTED
    )


REUSED_REQUEST_ID = (
    "This idempotency key was already used with a different request body; "
    "send a new key for a new request"
)
"""The conflict message of a request id replayed with another body."""


CITIZEN_HISTORY_LIMIT = 50
"""Records of one pseudonym read for its history (the newest; earlier ones add nothing)."""


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    """A versioned, serialised policy (see :meth:`bandit.policies.Policy.to_bytes`)."""

    version: str
    data: bytes
    created_at: float


class DecisionStore(Protocol):
    """Durable storage of decision records, learning queue and model snapshots.

    Errors: :class:`bandit.errors.UnknownEventError` for unknown event ids,
    :class:`bandit.errors.ConflictError` for contradicting writes.
    """

    def register_catalog(self, ids: Sequence[str]) -> str:
        """Persist the catalog's ordered ids (once per fingerprint) and store new records
        compactly against it (``service/store/record_codec.py``); its fingerprint."""

    def ping(self) -> bool:
        """True when the backend answers (used by ``/readyz``)."""

    def close(self) -> None:
        """Release connections."""

    # -- decisions ---------------------------------------------------------------------------

    def put_decision(
        self,
        record: DecisionRecord,
        *,
        request_id: str | None = None,
        protected: ProtectedAttributes | None = None,
        horizon_seconds: float,
        request_fingerprint: str | None = None,
    ) -> WriteResult:
        """Store a new record (pending until ``record.timestamp + horizon_seconds``).

        With a ``request_id`` already seen (and not expired: request ids live
        ``idempotency_ttl_seconds``), store nothing and return the first record with
        ``changed=False``; if both calls sent a ``request_fingerprint`` (a keyed hash of the
        canonical request body) and they differ, raise :class:`~bandit.errors.ConflictError`
        (:data:`REUSED_REQUEST_ID`) instead of replaying. Protected attributes are stored apart
        from the record.
        """

    def get_decision(self, event_id: str) -> DecisionRecord:
        """The record of ``event_id``."""

    def get_protected(self, event_id: str) -> ProtectedAttributes | None:
        """Protected attributes stored for ``event_id`` (audit role only)."""

    def record_assignment(self, event_id: str, assigned: str, reason: str | None) -> WriteResult:
        """Store the caseworker's assignment; the same assignment again is a no-op; a
        different one raises ``ConflictError``."""

    def record_outcome(
        self, event_id: str, outcome: Outcome, reward: float | None, *, censored: bool
    ) -> WriteResult:
        """Settle the record; the same outcome again is a no-op (``changed=False``); a
        different outcome raises ``ConflictError``, except a real report replacing the sweep's
        ``not_reported`` (:func:`is_correction`): stored with an entry in :meth:`corrections`
        and published as a ``correction`` message. A record for which
        :func:`publishes_outcome` holds is published to the learning queue in the same atomic
        step (and :func:`publishes_assignment` for assignments)."""

    def corrections(self) -> list[dict[str, str]]:
        """Audit entries of late reports that replaced ``not_reported`` (oldest first): the
        ``event_id``, the ``previous`` and the ``new`` status and ``at`` (Unix seconds)."""

    def expired_pending(self, now: float, limit: int = 1000) -> list[DecisionRecord]:
        """Unsettled records whose horizon has passed (for the settlement sweep)."""

    def pending_count(self) -> int:
        """Number of unsettled records."""

    def iter_records(self) -> Iterator[DecisionRecord]:
        """Every record, oldest first (exports, audits)."""

    def decisions_of(
        self, citizen_key: str, limit: int = CITIZEN_HISTORY_LIMIT
    ) -> list[DecisionRecord]:
        """The newest ``limit`` records of one pseudonym, oldest first (empty when none), found
        through the pseudonym index that erasure uses (no scan): a returning citizen's history
        (:mod:`service.history`)."""

    def group_counts(self) -> dict[str, GroupCounts]:
        """Counters per group (``"treatment"``, ``"control"``)."""

    # -- learning queue ----------------------------------------------------------------------

    def read_learning(self, consumer: str, count: int, block_ms: int = 0) -> list[LearningMessage]:
        """New messages for ``consumer`` (consumer group semantics: each message to one
        consumer), plus messages idle too long at a dead consumer (re-delivered)."""

    def reread_own_learning(self, consumer: str) -> None:
        """Make the next :meth:`read_learning` of ``consumer`` start again with its own
        unacknowledged messages (as after a restart), e.g. once a store outage interrupted a
        batch; otherwise they would wait to be claimed as idle."""

    def ack_learning(self, message_id: str) -> None:
        """Mark a message as learned; it is never delivered again."""

    def dead_letter(self, message: LearningMessage, error: str) -> None:
        """Move a message that failed too often to the dead-letter queue (and ack it)."""

    def learning_lag(self) -> int:
        """Messages published but not yet acknowledged."""

    # -- model snapshots ---------------------------------------------------------------------

    def save_model(self, snapshot: ModelSnapshot) -> None:
        """Publish a new model snapshot (becomes the latest)."""

    def latest_model(self) -> ModelSnapshot | None:
        """The newest snapshot, or ``None``."""
