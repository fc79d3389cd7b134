"""The parity and drift monitor: every ``monitor_interval_seconds`` it reads the store's records,
computes parity (:mod:`service.parity`), drift (:mod:`offline_eval.drift`) and the caseworkers'
override rates (:mod:`service.oversight`, over the current window) over the monitoring
window (``monitor_window_days``, a month by default) and sets the gauges of
:class:`service.monitor_metrics.MonitorMetrics`; the alert rules of the ``nbi-equity`` group
(``service/prometheus/alerts.yml``) watch them.

Windows, with ``W`` the window and ``now`` the run time:

* recommendations, receipts and the context features: decisions of ``(now - W, now]``; the
  PSI reference is the window before, ``(now - 2W, now - W]``;
* outcomes and calibration: decisions whose outcome is known at ``now``, those of
  ``(now - S - W, now - S]`` with ``S`` = horizon + report lag (information time, as in
  :mod:`service.summary`); ``S = 0`` with ``Settings.simulated_time``.

Predictions come from the model serving now (the caseworker-facing expected employment of
the offer received, else recommended); the need score is its expected employment under the
catalog's standard contact offer (no extra intervention). At most ``monitor_max_records``
decisions per window are used. Several replicas may each run the monitor: the figures are the
same (read from the shared store), so the work is only repeated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bandit.control import Group
from bandit.costs import baseline_action_id
from bandit.records import DecisionRecord
from bandit.types import Action, FeatureValue
from offline_eval.drift import Calibration, calibration, feature_psi
from service.oversight import OversightReport, record_groups, window_oversight
from service.parity import MonitoredDecision, ParityReport, parity_report
from service.periodic import PeriodicThread
from service.store.base import employed_within_horizon

if TYPE_CHECKING:
    from service.runtime import Runtime

logger = logging.getLogger("nbi.monitor")

DAY_SECONDS = 24 * 3600.0
WEEK_SECONDS = 7 * DAY_SECONDS


@dataclass
class Windows:
    """The records of the four windows (see the module docstring)."""

    current: list[DecisionRecord] = field(default_factory=list)
    reference: list[DecisionRecord] = field(default_factory=list)
    known: list[DecisionRecord] = field(default_factory=list)
    known_reference: list[DecisionRecord] = field(default_factory=list)


@dataclass(frozen=True)
class MonitorResult:
    """One run's figures (also published as gauges)."""

    parity: ParityReport
    psi: dict[str, float]
    sizes: tuple[int, int]
    calibration: tuple[Calibration, Calibration]
    at: float
    oversight: OversightReport


def split_windows(
    records: Iterable[DecisionRecord], *, now: float, window: float, shift: float, cap: int
) -> Windows:
    """Sort records into the four windows (each capped at ``cap`` records)."""
    out = Windows()
    bounds = (
        (out.current, now - window, now),
        (out.reference, now - 2 * window, now - window),
        (out.known, now - shift - window, now - shift),
        (out.known_reference, now - shift - 2 * window, now - shift - window),
    )
    for record in records:
        for target, low, high in bounds:
            if low < record.timestamp <= high and len(target) < cap:
                target.append(record)
    return out


class EquityMonitor(PeriodicThread):
    """Computes and publishes parity and drift figures periodically (first run at start-up)."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        super().__init__(
            name="nbi-monitor", interval=settings.monitor_interval_seconds, first_tick_at_once=True
        )
        self.runtime = runtime
        self.scarce = frozenset(f.value for f in settings.monitor_scarce_families)
        self.baseline = _baseline_action(runtime)
        self.ids = frozenset(runtime.catalog.ids)
        runtime.metrics.monitor.window.set(settings.monitor_window_days * DAY_SECONDS)

    def tick(self, now: float | None = None) -> MonitorResult:
        """One run at ``now`` (default: the clock)."""
        settings = self.runtime.settings
        at = time.time() if now is None else now
        shift = 0.0
        if not settings.simulated_time:
            shift = (settings.horizon_weeks + settings.report_lag_weeks) * WEEK_SECONDS
        windows = split_windows(
            self.runtime.store.iter_records(),
            now=at,
            window=settings.monitor_window_days * DAY_SECONDS,
            shift=shift,
            cap=settings.monitor_max_records,
        )
        report = parity_report(
            self._monitored(windows), min_group_size=settings.monitor_min_group_size
        )
        psi = feature_psi(
            [r.context for r in windows.reference],
            [r.context for r in windows.current],
            bins=settings.drift_bins,
            min_decisions=settings.monitor_min_group_size,
        )
        cals = (self._calibration(windows.known_reference), self._calibration(windows.known))
        sizes = (len(windows.reference), len(windows.current))
        metrics = self.runtime.metrics.monitor
        metrics.publish_parity(report)
        metrics.publish_drift(psi, sizes, cals, min_outcomes=settings.monitor_min_group_size)
        oversight = window_oversight(self.runtime.store, windows.current, settings)
        metrics.oversight.publish(oversight, max_jobcentres=settings.oversight_max_jobcentres)
        metrics.last_run.set(time.time())
        return MonitorResult(report, psi, sizes, cals, at, oversight)

    # ------------------------------------------------------------------ per record

    def _family(self, action_id: str | None) -> str | None:
        if action_id is None or action_id not in self.ids:
            return None
        return self.runtime.catalog.get(action_id).family.value

    def _predict(self, context: Mapping[str, FeatureValue], action_id: str | None) -> float | None:
        if action_id is None or action_id not in self.ids:
            return None
        policy = self.runtime.policy.get()
        action = self.runtime.catalog.action(action_id)
        with self.runtime.policy_lock:
            mean = policy.estimates(context, [action])[0].mean
        return min(max(float(mean), 0.0), 1.0)

    def _need(self, context: Mapping[str, FeatureValue]) -> float | None:
        if self.baseline is None:
            return None
        policy = self.runtime.policy.get()
        with self.runtime.policy_lock:
            return policy.estimate_of(context, self.baseline)

    def _known_pair(self, record: DecisionRecord) -> tuple[float, bool] | None:
        if not record.settled or record.censored or record.group is not Group.TREATMENT:
            return None
        predicted = self._predict(record.context, record.assigned or record.recommended)
        if predicted is None:
            return None
        return predicted, employed_within_horizon(record.reward, censored=record.censored)

    def _calibration(self, records: list[DecisionRecord]) -> Calibration:
        pairs = [p for r in records if (p := self._known_pair(r)) is not None]
        return calibration(pairs)

    def _monitored(self, windows: Windows) -> list[MonitoredDecision]:
        current = {r.event_id for r in windows.current}
        known = {r.event_id for r in windows.known}
        records = {r.event_id: r for r in (*windows.current, *windows.known)}
        out = []
        for event_id, record in records.items():
            if record.group is not Group.TREATMENT:
                continue
            groups = record_groups(self.runtime.store, record)
            if groups is None:  # erased meanwhile
                continue
            pair = self._known_pair(record) if event_id in known else None
            live = event_id in current and record.mode == "live"
            recommended = self._family(record.recommended) if live else None
            received = self._family(record.assigned) if event_id in current else None
            out.append(
                MonitoredDecision(
                    groups=groups,
                    need_score=self._need(record.context),
                    recommended_scarce=None if recommended is None else recommended in self.scarce,
                    received_scarce=None if received is None else received in self.scarce,
                    employed=None if pair is None else pair[1],
                    predicted=None if pair is None else pair[0],
                )
            )
        return out


def _baseline_action(runtime: Runtime) -> Action | None:
    """The catalog's first standard-contact offer (the need score's "no intervention")."""
    base_id = baseline_action_id(runtime.catalog)
    return None if base_id is None else runtime.catalog.action(base_id)
