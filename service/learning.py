"""In-process learning for a single replica (``Settings.learning == "inprocess"``).

Reuses the learner worker (:class:`service.learner.Learner`) in a background thread of the API
process: it learns from settled, complied treatment events with the logged propensity, on its
own copy of the policy, and every ``snapshot_every`` updates publishes a snapshot (acknowledging
the learned messages in the same step): a candidate, served once approved
(:mod:`service.lifecycle`; with ``model_approval="auto"`` at once). Serving
never touches the object being trained. With several replicas use ``learning="worker"`` and the
separate ``nbi learner`` process instead.
"""

from __future__ import annotations

import logging
import threading

from service.learner import Learner, LearnerConfig
from service.lifecycle import lifecycle_store, on_candidate, sync
from service.runtime import Runtime, fresh_policy
from service.store.base import ModelSnapshot

logger = logging.getLogger("nbi.learning")


class InProcessLearning:
    """A learner thread bound to the app's runtime.

    Parameters
    ----------
    runtime
        The app's resources (store, catalog, serving policy, metrics, settings).
    block_ms
        How long one read of the learning queue waits (bounds the shutdown delay).
    snapshot_seconds
        Publish pending updates at least this often.
    """

    def __init__(
        self, runtime: Runtime, *, block_ms: int = 200, snapshot_seconds: float = 5.0
    ) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.learner = Learner(
            store=runtime.store,
            catalog=runtime.catalog,
            policy_factory=lambda: fresh_policy(settings),
            config=LearnerConfig(
                consumer="inprocess",
                block_ms=block_ms,
                snapshot_every=settings.snapshot_every,
                snapshot_seconds=snapshot_seconds,
                max_deliveries=settings.max_deliveries,
                delay_strategy=settings.delay_strategy,
                horizon_weeks=settings.horizon_weeks,
                report_lag_weeks=settings.report_lag_weeks,
            ),
            on_commit=self._on_commit,
            metrics=runtime.metrics,
            param_change=settings.model_param_change,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _on_commit(self, snapshot: ModelSnapshot, event_ids: list[str]) -> None:
        # A new candidate (service/lifecycle.py): it serves only once approved.
        runtime = self.runtime
        if on_candidate(lifecycle_store(runtime), runtime.settings, runtime.catalog, snapshot):
            sync(runtime)
        logger.info("published candidate %s (+%d events)", snapshot.version, len(event_ids))

    def start(self) -> None:
        """Load the newest snapshot (or the serving policy's twin) and start the thread."""
        self.learner.load()
        self._thread = threading.Thread(target=self._run, name="nbi-learning", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.learner.step()
            except Exception:  # noqa: BLE001 (keep learning; the message will be re-delivered)
                logger.exception("in-process learning step failed")
                self._stop.wait(1.0)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and publish what was learned but not yet committed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        try:
            self.learner.finish()  # publish if it holds the lease, then release the lease
        except Exception:  # noqa: BLE001 (shutdown must go on; messages stay pending)
            logger.exception("final learning commit failed")
