"""Start-up and shutdown of the audit trail, erasure and the retention job for one app.

The lifespan (:mod:`service.app`) calls :meth:`Governance.start` after opening the runtime:
it opens the audit trail of the configured store, appends the start-up ``config`` entry
(settings fingerprint, no secrets), builds the store's eraser, registers
``nbi_retention_purged_records_total`` and starts the retention job when
``NBI_RETENTION_MONTHS`` is set. Handlers find the trail as ``app.state.audit`` and the eraser
as ``app.state.eraser``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.audit import SYSTEM_ACTOR, AuditTrail, open_audit_trail, settings_fingerprint
from service.erasure import Eraser, make_eraser
from service.retention import RetentionJob, purged_counter

if TYPE_CHECKING:
    from fastapi import FastAPI

    from service.config import Settings
    from service.runtime import Runtime


@dataclass
class Governance:
    """The audit trail, eraser and retention job of one app."""

    trail: AuditTrail
    eraser: Eraser
    retention: RetentionJob | None

    @classmethod
    def start(cls, settings: Settings, runtime: Runtime, app: FastAPI) -> Governance:
        """Open, audit the start-up configuration, start retention; publish on ``app.state``."""
        trail = open_audit_trail(settings)
        try:
            trail.append(
                SYSTEM_ACTOR, SYSTEM_ACTOR, "config", "settings", settings_fingerprint(settings)
            )
            eraser = make_eraser(runtime.store, settings)
        except BaseException:
            trail.close()
            raise
        counter = purged_counter(runtime.metrics.registry)
        job = None
        if settings.retention_months is not None:
            job = RetentionJob(settings, eraser, trail, counter)
            job.start()
        app.state.audit = trail
        app.state.eraser = eraser
        return cls(trail, eraser, job)

    def stop(self) -> None:
        """Stop the job and close what was opened."""
        if self.retention is not None:
            self.retention.stop()
        close = getattr(self.eraser, "close", None)
        if callable(close) and not hasattr(self.eraser, "store"):
            close()  # the SQLite eraser's own connection; the Redis one shares the store's
        self.trail.close()
