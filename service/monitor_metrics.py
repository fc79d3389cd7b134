"""The gauges of the parity and drift monitor (:mod:`service.monitor`).

Registered by :class:`service.metrics.ServiceMetrics` on its registry. Labels come from fixed
lists only (:data:`service.parity.DIMENSIONS`, :data:`service.parity.MEASURES`,
:data:`offline_eval.drift.FEATURES`, the two windows): never an id. Values that cannot be computed
(too few decisions in a group or window) are NaN, which no alert threshold matches. Under
several workers each process computes the same figures from the shared store
(``mostrecent``).
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Gauge

from offline_eval.drift import FEATURES, Calibration
from service.oversight_metrics import OversightMetrics
from service.parity import DIMENSIONS, MEASURES, ParityReport

WINDOWS = ("reference", "current")


def _gauge(name: str, doc: str, labels: tuple[str, ...], registry: CollectorRegistry) -> Gauge:
    return Gauge(name, doc, labels, multiprocess_mode="mostrecent", registry=registry)


class MonitorMetrics:
    """Parity and drift gauges on ``registry`` (every label set pre-initialised to NaN)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.rate = _gauge(
            "nbi_parity_rate_ratio",
            "Rate of a measure (recommendation/receipt of a scarce family, employment, model's "
            "predicted employment) per group, treatment arm, monitoring window.",
            ("measure", "dimension", "group"),
            r,
        )
        self.decisions = _gauge(
            "nbi_parity_group_decisions",
            "Decisions behind each parity rate.",
            ("measure", "dimension", "group"),
            r,
        )
        self.min_max = _gauge(
            "nbi_parity_min_max_ratio",
            "Smallest over largest group rate of a measure (groups with enough decisions; "
            "four-fifths rule).",
            ("measure", "dimension"),
            r,
        )
        self.gap = _gauge(
            "nbi_parity_gap_ratio",
            "Largest minus smallest group rate of a measure (groups with enough decisions).",
            ("measure", "dimension"),
            r,
        )
        self.calibration_error = _gauge(
            "nbi_parity_calibration_error_ratio",
            "Largest |predicted - observed employment| over the groups of a dimension.",
            ("dimension",),
            r,
        )
        self.psi = _gauge(
            "nbi_drift_population_stability_index",
            "PSI of a context feature, current vs reference window.",
            ("feature",),
            r,
        )
        self.window_decisions = _gauge(
            "nbi_drift_window_decisions",
            "Decisions in the reference and current windows (all arms).",
            ("window",),
            r,
        )
        self.predicted = _gauge(
            "nbi_drift_calibration_predicted_ratio",
            "Mean predicted employment over the window's known outcomes (treatment arm).",
            ("window",),
            r,
        )
        self.observed = _gauge(
            "nbi_drift_calibration_observed_ratio",
            "Observed employment rate over the window's known outcomes (treatment arm).",
            ("window",),
            r,
        )
        self.calibration_decisions = _gauge(
            "nbi_drift_calibration_decisions",
            "Known outcomes behind the calibration figures.",
            ("window",),
            r,
        )
        self.drift_calibration_error = _gauge(
            "nbi_drift_calibration_error_ratio",
            "|predicted - observed employment| in the current window (NaN with too few outcomes).",
            (),
            r,
        )
        self.window = _gauge(
            "nbi_monitor_window_seconds", "Length of the monitoring window.", (), r
        )
        self.last_run = _gauge(
            "nbi_monitor_last_run_timestamp_seconds",
            "When the parity and drift monitor last completed.",
            (),
            r,
        )
        self.oversight = OversightMetrics(r)  # override rates (service/oversight.py)
        self._initialise()

    def _initialise(self) -> None:
        for dimension, groups in DIMENSIONS.items():
            self.calibration_error.labels(dimension).set(math.nan)
            for measure in MEASURES:
                self.min_max.labels(measure, dimension).set(math.nan)
                self.gap.labels(measure, dimension).set(math.nan)
                for group in groups:
                    self.rate.labels(measure, dimension, group).set(math.nan)
                    self.decisions.labels(measure, dimension, group).set(0)
        for feature in FEATURES:
            self.psi.labels(feature).set(math.nan)
        for window in WINDOWS:
            self.window_decisions.labels(window).set(0)
            self.predicted.labels(window).set(math.nan)
            self.observed.labels(window).set(math.nan)
            self.calibration_decisions.labels(window).set(0)
        self.drift_calibration_error.set(math.nan)

    def publish_parity(self, report: ParityReport) -> None:
        """Set every parity gauge from ``report`` (groups without decisions: NaN and 0)."""
        for dimension, groups in DIMENSIONS.items():
            self.calibration_error.labels(dimension).set(
                report.calibration_error.get(dimension, math.nan)
            )
            for measure in MEASURES:
                self.min_max.labels(measure, dimension).set(
                    report.min_max_ratio.get((measure, dimension), math.nan)
                )
                self.gap.labels(measure, dimension).set(
                    report.gap.get((measure, dimension), math.nan)
                )
                for group in groups:
                    rate = report.rates.get((measure, dimension, group))
                    self.rate.labels(measure, dimension, group).set(
                        math.nan if rate is None else rate.rate
                    )
                    self.decisions.labels(measure, dimension, group).set(
                        0 if rate is None else rate.n
                    )

    def publish_drift(
        self,
        psi: dict[str, float],
        sizes: tuple[int, int],
        calibrations: tuple[Calibration, Calibration],
        *,
        min_outcomes: int,
    ) -> None:
        """Set the drift gauges: PSI per feature, window sizes, calibration per window."""
        for feature in FEATURES:
            self.psi.labels(feature).set(psi.get(feature, math.nan))
        for window, size, cal in zip(WINDOWS, sizes, calibrations, strict=True):
            self.window_decisions.labels(window).set(size)
            self.predicted.labels(window).set(cal.predicted)
            self.observed.labels(window).set(cal.observed)
            self.calibration_decisions.labels(window).set(cal.n)
        current = calibrations[1]
        self.drift_calibration_error.set(current.error if current.n >= min_outcomes else math.nan)
