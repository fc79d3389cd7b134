"""Every Redis key and stream name used by the service, in one place.

All names share one configurable prefix (``Settings.redis_prefix``, default ``"nbi:"``) so
several deployments can share a Redis database and tests can isolate themselves.

Examples
--------
>>> k = RedisKeys("nbi:")
>>> k.record("e1"), k.learning_stream, k.dead_letter_stream
('nbi:rec:e1', 'nbi:learn', 'nbi:learn:dead')
"""

from __future__ import annotations

from dataclasses import dataclass

from bandit.errors import InvalidInputError

LEARNING_GROUP = "learners"
"""Consumer group of the learner workers on the learning stream."""


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Key names under one prefix.

    Parameters
    ----------
    prefix
        Prepended to every key (e.g. ``"nbi:"``); must be non-empty.
    """

    prefix: str = "nbi:"

    def __post_init__(self) -> None:
        if not self.prefix:
            msg = "Expected a non-empty Redis key prefix"
            raise InvalidInputError(msg)

    # -- per-record keys ---------------------------------------------------------------------

    def record(self, event_id: str) -> str:
        """String holding the JSON decision record of ``event_id``."""
        return f"{self.prefix}rec:{event_id}"

    def protected(self, event_id: str) -> str:
        """String holding the protected attributes of ``event_id`` (kept apart from the record)."""
        return f"{self.prefix}prot:{event_id}"

    def idempotency(self, request_id: str) -> str:
        """String mapping a client request id to the event id it created."""
        return f"{self.prefix}idem:{request_id}"

    def model(self, version: str) -> str:
        """Hash of one model snapshot (``data``, ``created_at``)."""
        return f"{self.prefix}model:{version}"

    def lease(self, name: str) -> str:
        """String naming the current holder of a single-writer lease (e.g. the learner)."""
        return f"{self.prefix}lease:{name}"

    def lease_fence(self, name: str) -> str:
        """Counter of the holdings of a lease: the fencing token (never expires)."""
        return f"{self.prefix}lease:{name}:fence"

    def group_counts(self, group: str) -> str:
        """Hash of the experiment counters of one RCT arm."""
        return f"{self.prefix}counts:{group}"

    def catalog(self, fingerprint: str) -> str:
        """String holding the ordered ids of one catalog (records index into it)."""
        return f"{self.prefix}catalog:{fingerprint}"

    def citizen(self, citizen_key: str) -> str:
        """Set of the event ids of one pseudonym (erasure finds them without a scan)."""
        return f"{self.prefix}cit:{citizen_key}"

    @property
    def record_times(self) -> str:
        """Sorted set of every event id scored by its decision time (retention)."""
        return f"{self.prefix}rectime"

    # -- global keys -------------------------------------------------------------------------

    @property
    def record_index(self) -> str:
        """Sorted set of every event id, scored by insertion sequence (oldest first)."""
        return f"{self.prefix}records"

    @property
    def sequence(self) -> str:
        """Counter giving the insertion sequence of records."""
        return f"{self.prefix}seq"

    @property
    def pending(self) -> str:
        """Sorted set of unsettled event ids, scored by their horizon (Unix seconds)."""
        return f"{self.prefix}pending"

    @property
    def events_stream(self) -> str:
        """Audit stream of decisions, assignments and outcomes (trimmed, approximate MAXLEN)."""
        return f"{self.prefix}events"

    @property
    def corrections_stream(self) -> str:
        """Audit stream of late reports that replaced the sweep's ``not_reported`` (untrimmed)."""
        return f"{self.prefix}corrections"

    @property
    def learning_stream(self) -> str:
        """Stream of settled events to learn from (consumer group :data:`LEARNING_GROUP`)."""
        return f"{self.prefix}learn"

    @property
    def dead_letter_stream(self) -> str:
        """Stream of learning messages that failed too often."""
        return f"{self.prefix}learn:dead"

    @property
    def model_index(self) -> str:
        """Sorted set of model versions by creation time."""
        return f"{self.prefix}models"

    @property
    def model_latest(self) -> str:
        """String holding the version of the newest model snapshot."""
        return f"{self.prefix}model-latest"

    @property
    def control(self) -> str:
        """Hash of the lifecycle control values (approved version, mode, kill switch)."""
        return f"{self.prefix}control"
