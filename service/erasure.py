"""Erasure of one citizen (GDPR art. 17) and the retention limit, over either store.

``erase_citizen`` pseudonymises the raw id with the service's key (as every request does),
finds the pseudonym's records through its index (SQLite expression index, Redis set), removes
each record, its protected attributes, its request-id (idempotency) key and its queue/stream
entries, makes the removal physical (SQLite: ``secure_delete`` + WAL checkpoint; Redis: AOF
rewrite) and appends an ``erasure`` entry to the audit trail.

The audit entry names no pseudonym, not even a hash of it: anyone holding the key and the raw
id could recompute such a hash and learn that this person was a client. It holds the counts,
the actor (key id) and an optional operator reference (a case number, never a CPR number).

What is not erased, and why: a model's weights are aggregate sums over every citizen it
learned from; one person's contribution cannot be subtracted from a VW model, and the
weights hold no record, identifier or attribute of anyone (documented in the README). The
audit trail keeps the event ids of past assignments and outcomes (who acted, when), without
their content, because it is the processing record the municipality must keep; after erasure
an event id points to nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from bandit.errors import InvalidInputError
from bandit.privacy import looks_like_cpr, pseudonymise
from service.store.sqlite_erasure import Erased, SQLiteEraser

if TYPE_CHECKING:
    from service.audit import AuditTrail
    from service.config import Settings
    from service.store.base import DecisionStore

_MAX_REFERENCE = 64


class Eraser(Protocol):
    """A store's erasure operations."""

    def event_ids_of(self, pseudonym: str) -> list[str]:
        """Event ids of ``pseudonym``."""

    def erase_pseudonym(self, pseudonym: str) -> Erased:
        """Remove every event of ``pseudonym``."""

    def purge_before(self, cutoff: float) -> Erased:
        """Remove every event decided before ``cutoff``."""


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What an erasure removed, and whether it is physically gone from disk."""

    records: int
    protected: int
    request_ids: int
    queue_entries: int
    flushed: bool
    audit_seq: int

    def to_dict(self) -> dict[str, int | bool]:
        """JSON-ready."""
        return asdict(self)


def make_eraser(store: DecisionStore, settings: Settings) -> Eraser:
    """The eraser of ``store`` (same SQLite file, or the same Redis client and prefix)."""
    if settings.store == "redis":
        from service.store.redis_erasure import RedisEraser
        from service.store.redis_store import RedisStore

        assert isinstance(store, RedisStore)  # noqa: S101 (the factory made it)
        return RedisEraser(store)
    return SQLiteEraser(settings.sqlite_path)


def _flush(eraser: Eraser) -> bool:
    """Make the removal physical: SQLite WAL checkpoint, Redis AOF rewrite."""
    if isinstance(eraser, SQLiteEraser):
        return eraser.checkpoint()
    rewrite = getattr(eraser, "rewrite_aof", None)
    return bool(rewrite()) if rewrite is not None else False


def check_reference(reference: str | None) -> str | None:
    """An operator's reference for the audit entry: short, no CPR number."""
    if reference is None or not reference.strip():
        return None
    text = reference.strip()
    if len(text) > _MAX_REFERENCE or looks_like_cpr(text):
        msg = f"reference must be at most {_MAX_REFERENCE} characters and hold no CPR number"
        raise InvalidInputError(msg)
    return text


def erase_citizen(  # noqa: PLR0913 (who, what, where)
    raw_id: str,
    *,
    settings: Settings,
    eraser: Eraser,
    trail: AuditTrail,
    actor: str,
    role: str,
    reference: str | None = None,
) -> ErasureReport:
    """Erase every record of the citizen ``raw_id`` and audit it (idempotent: a second call
    removes nothing and is audited with zero counts)."""
    ref = check_reference(reference)
    pseudonym = pseudonymise(raw_id, settings.pseudonym_key_bytes())
    erased = eraser.erase_pseudonym(pseudonym)
    flushed = _flush(eraser)
    detail: dict[str, object] = {**asdict(erased), "flushed": flushed}
    if ref is not None:
        detail["reference"] = ref
    entry = trail.append(actor, role, "erasure", "citizen", detail)
    return ErasureReport(
        erased.records,
        erased.protected,
        erased.request_ids,
        erased.queue_entries,
        flushed,
        entry.seq,
    )


def months_before(now: datetime, months: int) -> datetime:
    """``now`` minus calendar months (the day clamped to the target month's length).

    Examples
    --------
    >>> months_before(datetime(2026, 3, 31, tzinfo=UTC), 1).date().isoformat()
    '2026-02-28'
    >>> months_before(datetime(2026, 1, 15, tzinfo=UTC), 13).date().isoformat()
    '2024-12-15'
    """
    import calendar

    index = now.year * 12 + (now.month - 1) - months
    year, month = divmod(index, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)


def purge_expired(
    settings: Settings, eraser: Eraser, trail: AuditTrail, now: datetime | None = None
) -> Erased:
    """Remove records older than ``settings.retention_months`` (nothing when unset); an audit
    entry names the cut-off and the counts when anything was removed."""
    if settings.retention_months is None:
        return Erased()
    moment = now if now is not None else datetime.now(tz=UTC)
    cutoff = months_before(moment, settings.retention_months)
    erased = eraser.purge_before(cutoff.timestamp())
    if erased.records:
        flushed = _flush(eraser)
        trail.append(
            "system",
            "system",
            "retention",
            "decisions",
            {**asdict(erased), "before": cutoff.isoformat(), "flushed": flushed},
        )
    return erased
