"""Hot swap of model snapshots in API replicas.

The app itself now follows the store's *approved* version, mode and kill switch with
:class:`service.lifecycle.LifecycleWatcher` (a new snapshot is a candidate until approved);
:class:`PolicyRef` is the swappable reference both use, and :class:`ModelWatcher` remains a
generic "follow the newest snapshot" poller. The description below is of that poller.

The learner worker publishes versioned snapshots with ``store.save_model``; every API replica
runs one :class:`ModelWatcher` that polls the store every ``Settings.model_poll_seconds`` and,
when the latest version differs from the one serving, rebuilds the policy from the snapshot
*outside* any request and then swaps the reference in one assignment. Requests in flight keep
the policy object they already hold; new requests get the new one. Nothing is dropped.

How the app lifespan uses it (``service/app.py``)::

    ref = PolicyRef(policy)                      # handlers call ref.get()
    watcher = ModelWatcher(store, ref.swap_from_snapshot, poll_seconds=settings.model_poll_seconds,
                           current_version=policy.model_version)
    if settings.learning == "worker":
        watcher.start()
    yield ...
    watcher.stop()

Any callback ``(policy, snapshot) -> None`` works instead of :meth:`PolicyRef.swap_from_snapshot`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from bandit.errors import ModelFormatError
from bandit.policies import Policy, policy_from_bytes
from service.periodic import PeriodicThread
from service.store.base import ModelSnapshot

logger = logging.getLogger("nbi.model_watcher")

SwapCallback = Callable[[Policy, ModelSnapshot], None]


class SnapshotSource(Protocol):
    """The part of the store the watcher needs."""

    def latest_model(self) -> ModelSnapshot | None:
        """The newest snapshot, or ``None``."""


class PolicyRef:
    """An atomically swappable reference to the serving policy.

    Examples
    --------
    >>> from bandit.policies import make_policy
    >>> ref = PolicyRef(make_policy("uniform"))
    >>> old = ref.get()
    >>> ref.swap(make_policy("uniform", seed=3))
    >>> ref.get() is old, ref.get().seed, ref.version is not None
    (False, 3, True)
    """

    def __init__(self, policy: Policy, version: str | None = None) -> None:
        self._policy = policy
        self.version: str | None = version or policy.model_version

    def get(self) -> Policy:
        """The policy to use for one request (hold on to it for the whole request)."""
        return self._policy

    def swap(self, policy: Policy, version: str | None = None) -> None:
        """Replace the serving policy (a single reference assignment: atomic)."""
        self._policy = policy
        self.version = version or policy.model_version

    def swap_from_snapshot(self, policy: Policy, snapshot: ModelSnapshot) -> None:
        """:data:`SwapCallback` form of :meth:`swap`."""
        self.swap(policy, snapshot.version)


class ModelWatcher(PeriodicThread):
    """Background thread that polls the store for new snapshots and swaps them in.

    Parameters
    ----------
    store
        Anything with ``latest_model()`` (both stores); ``latest_model_version()`` is used for
        cheap polling when the store has it.
    on_swap
        Called with the rebuilt policy and its snapshot after a new version appeared.
    poll_seconds
        Seconds between polls.
    current_version
        Version serving now (so the first poll does not reload it).
    """

    def __init__(
        self,
        store: SnapshotSource,
        on_swap: SwapCallback,
        *,
        poll_seconds: float = 5.0,
        current_version: str | None = None,
    ) -> None:
        super().__init__(name="nbi-model-watcher", interval=poll_seconds, first_tick_at_once=False)
        self.store = store
        self.on_swap = on_swap
        self.poll_seconds = poll_seconds
        self.current_version = current_version
        self.swaps = 0

    def check_once(self) -> bool:
        """Poll once; swap and return ``True`` when a new version was loaded."""
        peek = getattr(self.store, "latest_model_version", None)
        if callable(peek) and peek() in (None, self.current_version):
            return False
        snapshot = self.store.latest_model()
        if snapshot is None or snapshot.version == self.current_version:
            return False
        try:
            policy = policy_from_bytes(snapshot.data)
        except ModelFormatError:
            logger.exception("ignoring unreadable model snapshot %s", snapshot.version)
            self.current_version = snapshot.version
            return False
        self.on_swap(policy, snapshot)
        self.current_version = snapshot.version
        self.swaps += 1
        logger.info("now serving model %s", snapshot.version)
        return True

    def tick(self) -> bool:
        """One poll (see :meth:`check_once`)."""
        return self.check_once()
