"""The retention job: every ``retention_interval_seconds`` remove records older than
``retention_months`` (``service/erasure.py``), counted in ``nbi_retention_purged_records_total``.

Several replicas may run it at once: removal is idempotent, so the worst case is a wasted
pass. The counter counts what this process removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter

from service.erasure import Eraser, purge_expired
from service.periodic import PeriodicThread

if TYPE_CHECKING:
    from service.audit import AuditTrail
    from service.config import Settings


def purged_counter(registry: CollectorRegistry) -> Counter:
    """``nbi_retention_purged_records_total`` on ``registry``."""
    return Counter(
        "nbi_retention_purged_records",
        "Decision records removed by the retention limit (NBI_RETENTION_MONTHS)",
        registry=registry,
    )


class RetentionJob(PeriodicThread):
    """Runs :func:`service.erasure.purge_expired` periodically (first pass at start-up)."""

    def __init__(
        self, settings: Settings, eraser: Eraser, trail: AuditTrail, counter: Counter
    ) -> None:
        super().__init__(
            name="nbi-retention",
            interval=settings.retention_interval_seconds,
            first_tick_at_once=True,
        )
        self.settings = settings
        self.eraser = eraser
        self.trail = trail
        self.counter = counter

    def tick(self) -> int:
        """One pass; returns the records removed."""
        removed = purge_expired(self.settings, self.eraser, self.trail).records
        if removed:
            self.counter.inc(removed)
        return removed
