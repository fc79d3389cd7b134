"""Every Prometheus metric of the service and the learner, on an injectable registry.

Names follow the Prometheus naming guide (``nbi_`` prefix, base units, ``_total`` counters).
Labels are bounded: route templates, methods, status classes, intervention families, RCT
groups, outcome statuses, error types. Never an event id, a citizen key or raw context.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable
from threading import Lock

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from bandit.catalog import Family
from bandit.control import Group
from bandit.rewards import OutcomeStatus
from service.monitor_metrics import MonitorMetrics

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Set by ``nbi serve --workers N`` (N > 1): metrics are shared through files there."""

NO_FAMILY = "none"
"""Family label of control-group decisions (no recommendation)."""

SETTLE_RESULTS = ("employed", "not_employed", "censored", "not_reported")
SETTLE_SOURCES = ("api", "sweep", "correction")
ERROR_TYPES = (
    "validation",
    "bad_request",
    "sensitive_data",
    "unknown_event",
    "unknown_action",
    "no_eligible_action",
    "conflict",
    "change_cap",
    "unknown_model",
    "unauthorized",
    "forbidden",
    "payload_too_large",
    "not_found",
    "method_not_allowed",
    "unsupported_media_type",
    "model_format",
    "unavailable",
    "store_unavailable",
    "overloaded",
    "internal",
    "other",
)
SHED_REASONS = (
    "overloaded",
    "queue_timeout",
    "store_unavailable",
    "client_gone",
    "analysis_busy",
)
"""Why admission control refused a request (``nbi_requests_shed_total``)."""
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_WEEK = 7 * 24 * 3600.0
_JOIN_BUCKETS = tuple(w * _WEEK for w in (0.5, 1, 2, 4, 8, 13, 26, 39, 52))
_MAX_CACHED_SERIES = 1024
"""Bound on the cached request series (methods are client-chosen strings)."""
_PROBABILITY_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


class ServiceMetrics:
    """The service's metrics, registered on ``registry`` (a fresh one per app or test).

    Parameters
    ----------
    registry
        Where to register; default a new :class:`~prometheus_client.CollectorRegistry`.
    ips_window
        Number of recent settled treatment events in the online reward estimate.

    Examples
    --------
    >>> m = ServiceMetrics()
    >>> m.observe_recommendation("mentor", "treatment", min_probability=0.1, propensity=0.3)
    >>> b"nbi_recommendations_total" in m.exposition()
    True
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, ips_window: int = 500) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.request_duration = Histogram(
            "nbi_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ("route", "method"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "nbi_http_requests",
            "HTTP requests by route template, method and status class.",
            ("route", "method", "status_class"),
            registry=r,
        )
        self.recommendations = Counter(
            "nbi_recommendations",
            "Decisions made, by recommended family (none for control) and RCT group.",
            ("family", "group"),
            registry=r,
        )
        self.control_share = Gauge(
            "nbi_control_share_ratio",
            "Observed share of control-group decisions made by this process.",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.control_share_configured = Gauge(
            "nbi_control_share_configured_ratio",
            "Configured control share of the experiment.",
            multiprocess_mode="max",
            registry=r,
        )
        self.outcomes_received = Counter(
            "nbi_outcomes_received",
            "Outcome reports accepted (including idempotent replays; not those refused), by status.",
            ("status",),
            registry=r,
        )
        self.assignments_flagged = Counter(
            "nbi_assignments_flagged",
            "Assignments accepted with a warning, by reason (over_capacity, ineligible).",
            ("reason",),
            registry=r,
        )
        self.outcomes_settled = Counter(
            "nbi_outcomes_settled",
            "Decisions settled, by result and source (api report or horizon sweep).",
            ("result", "source"),
            registry=r,
        )
        self.pending = Gauge(
            "nbi_pending_decisions",
            "Decisions waiting for an outcome.",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.reward_join_delay = Histogram(
            "nbi_reward_join_delay_seconds",
            "Time from a decision to its settlement.",
            buckets=_JOIN_BUCKETS,
            registry=r,
        )
        self.min_probability = Histogram(
            "nbi_recommendation_min_probability_ratio",
            "Smallest probability in each treatment pmf (exploration; mean = sum / count).",
            buckets=_PROBABILITY_BUCKETS,
            registry=r,
        )
        self.propensity = Histogram(
            "nbi_recommendation_propensity_ratio",
            "Probability of the recommended action.",
            buckets=_PROBABILITY_BUCKETS,
            registry=r,
        )
        self.online_reward = Gauge(
            "nbi_online_reward_estimate_ratio",
            "Mean reward of the last settled events per group; for treatment the IPS estimate "
            "of the deployed policy (on-policy weights pi/p = 1).",
            ("group",),
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.learner_lag = Gauge(
            "nbi_learner_lag_messages",
            "Learning-queue messages published but not yet acknowledged.",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.learner_updates = Counter(
            "nbi_learner_updates",
            "Policy updates applied by the learner.",
            registry=r,
        )
        self.learner_skipped = Counter(
            "nbi_learner_skipped",
            "Settled events not learned from, by reason.",
            ("reason",),
            registry=r,
        )
        self.learner_failures = Counter(
            "nbi_learner_failures",
            "Failed learning attempts (the message is retried).",
            registry=r,
        )
        self.learner_dead_letters = Counter(
            "nbi_learner_dead_letters",
            "Learning messages moved to the dead-letter queue.",
            registry=r,
        )
        self.model_snapshots = Counter(
            "nbi_model_snapshots",
            "Model snapshots published.",
            registry=r,
        )
        self.model_info = Gauge(
            "nbi_model_info",
            "The model version currently serving (value 1).",
            ("version", "policy"),
            multiprocess_mode="max",
            registry=r,
        )
        self.model_updates = Gauge(
            "nbi_model_updates",
            "Number of updates in the model currently serving.",
            multiprocess_mode="max",
            registry=r,
        )
        self.model_loaded = Gauge(
            "nbi_model_loaded_timestamp_seconds",
            "When the serving model was loaded or swapped.",
            multiprocess_mode="max",
            registry=r,
        )
        self.store_durable = Gauge(
            "nbi_store_durable",
            "1 when the store persists every acknowledged write (SQLite synchronous=FULL; Redis "
            "appendonly yes with appendfsync always), else 0.",
            multiprocess_mode="min",
            registry=r,
        )
        self.store_up = Gauge(
            "nbi_store_up",
            "1 while the store answers, 0 while this process treats it as unreachable "
            "(requests are answered 503 at once; service/outage.py).",
            multiprocess_mode="min",
            registry=r,
        )
        self.shed = Counter(
            "nbi_requests_shed",
            "Requests refused before any work by admission control (service/admission.py), "
            "by reason: overloaded, queue_timeout, store_unavailable, client_gone, analysis_busy "
            "(a model analysis while another runs).",
            ("reason",),
            registry=r,
        )
        self.in_flight = Gauge(
            "nbi_requests_in_flight",
            "API requests being processed (admitted) by this process.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.queued = Gauge(
            "nbi_requests_queued",
            "API requests waiting for admission in this process.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.errors = Counter(
            "nbi_errors",
            "Error responses by problem type.",
            ("type",),
            registry=r,
        )
        self.monitor = MonitorMetrics(r)  # parity and drift (service/monitor.py)
        self._lock = Lock()
        self._request_series: dict[tuple[str, str, str], tuple[Histogram, Counter]] = {}
        self._decisions = 0
        self._controls = 0
        self._model_labels: tuple[str, str] | None = None
        self._windows: dict[str, deque[float]] = {g.value: deque(maxlen=ips_window) for g in Group}
        self._preinitialise()

    def _preinitialise(self) -> None:
        for reason in ("over_capacity", "ineligible"):
            self.assignments_flagged.labels(reason)
        for group in Group:
            self.online_reward.labels(group.value)
            self.recommendations.labels(NO_FAMILY, group.value)
            for family in Family:
                self.recommendations.labels(family.value, group.value)
        for status in OutcomeStatus:
            self.outcomes_received.labels(status.value)
        for result in SETTLE_RESULTS:
            for source in SETTLE_SOURCES:
                self.outcomes_settled.labels(result, source)
        for error in ERROR_TYPES:
            self.errors.labels(error)
        for reason in SHED_REASONS:
            self.shed.labels(reason)
        for reason in ("control", "not_complied", "censored", "unassigned", "late_correction"):
            self.learner_skipped.labels(reason)

    # ------------------------------------------------------------------ recorders

    def observe_request(self, route: str, method: str, status_class: str, seconds: float) -> None:
        """Time one HTTP request and count it by route template, method and status class.

        The labelled series are looked up once per label combination and then reused: the
        request path stays free of ``labels()`` calls (label checks, a lock, tuple building).

        Examples
        --------
        >>> m = ServiceMetrics()
        >>> m.observe_request("/healthz", "GET", "2xx", 0.002)
        >>> m.observe_request("/healthz", "GET", "2xx", 0.003)
        >>> m.registry.get_sample_value(
        ...     "nbi_http_requests_total", {"route": "/healthz", "method": "GET", "status_class": "2xx"}
        ... )
        2.0
        """
        key = (route, method, status_class)
        series = self._request_series.get(key)
        if series is None:
            series = (
                self.request_duration.labels(route, method),
                self.requests.labels(route, method, status_class),
            )
            if len(self._request_series) < _MAX_CACHED_SERIES:
                self._request_series[key] = series
        series[0].observe(seconds)
        series[1].inc()

    def observe_recommendation(
        self,
        family: str,
        group: str,
        *,
        min_probability: float | None = None,
        propensity: float | None = None,
    ) -> None:
        """Count one decision and update the control share and exploration figures."""
        self.recommendations.labels(family, group).inc()
        if min_probability is not None:
            self.min_probability.observe(min_probability)
        if propensity is not None:
            self.propensity.observe(propensity)
        with self._lock:
            self._decisions += 1
            self._controls += group == Group.CONTROL.value
            self.control_share.set(self._controls / self._decisions)

    def observe_settlement(
        self, result: str, source: str, *, group: str, reward: float | None, delay: float
    ) -> None:
        """Count one settlement and update the windowed online reward estimate."""
        self.outcomes_settled.labels(result, source).inc()
        self.reward_join_delay.observe(max(delay, 0.0))
        if reward is None:
            return
        with self._lock:
            window = self._windows[group]
            window.append(reward)
            self.online_reward.labels(group).set(sum(window) / len(window))

    def set_model(self, version: str, policy: str, n_updates: int, loaded_at: float) -> None:
        """Publish the serving model (the old version's series is removed)."""
        with self._lock:
            if self._model_labels is not None and self._model_labels != (version, policy):
                self.model_info.labels(*self._model_labels).set(0)  # multiprocess files keep it
                self.model_info.remove(*self._model_labels)
            self._model_labels = (version, policy)
        self.model_info.labels(version, policy).set(1)
        self.model_updates.set(n_updates)
        self.model_loaded.set(loaded_at)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format.

        Under several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set, see ``nbi serve
        --workers``) the values of every process are aggregated from the shared directory.
        """
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)

    @staticmethod
    def metric_names(registry: CollectorRegistry) -> Iterable[str]:
        """Names of every metric family in ``registry`` (for dashboards and tests)."""
        return [m.name for m in registry.collect()]
