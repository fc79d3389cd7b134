"""The gauges of the human-oversight monitor (:mod:`service.oversight`), set by the parity and
drift monitor (:mod:`service.monitor`) on each run over the monitoring window.

Bounded labels only: no caseworker label at all (the count of low-override caseworkers and the
smallest rate stand for them; the table is ``GET /v1/oversight``); the groups of
:data:`service.oversight.OVERSIGHT_DIMENSIONS`; job centres by their short pseudonym, at most
``max_jobcentres`` label values per process (job centres are a small fixed set; any beyond the
cap are summed into ``other``). A job centre seen before but absent from a run is set to NaN
and 0. Rates that cannot be computed are NaN, which no alert threshold matches.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Gauge

from service.oversight import OVERSIGHT_DIMENSIONS, OverrideCount, OversightReport
from service.parity import DIMENSIONS

OTHER_JOBCENTRES = "other"


def _gauge(name: str, doc: str, labels: tuple[str, ...], registry: CollectorRegistry) -> Gauge:
    return Gauge(name, doc, labels, multiprocess_mode="mostrecent", registry=registry)


class OversightMetrics:
    """Override-rate gauges on ``registry`` (group label sets pre-initialised)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.rate = _gauge(
            "nbi_oversight_override_ratio",
            "Share of assignments after a shown suggestion that differ from it (monitoring "
            "window, treatment arm, live).",
            (),
            r,
        )
        self.assignments = _gauge(
            "nbi_oversight_assignments", "Assignments behind nbi_oversight_override_ratio.", (), r
        )
        self.group_rate = _gauge(
            "nbi_oversight_group_override_ratio",
            "Override rate per group of a protected or need dimension.",
            ("dimension", "group"),
            r,
        )
        self.group_assignments = _gauge(
            "nbi_oversight_group_assignments",
            "Assignments behind each group override rate.",
            ("dimension", "group"),
            r,
        )
        self.jobcentre_rate = _gauge(
            "nbi_oversight_jobcentre_override_ratio",
            "Override rate per job centre (short pseudonym; 'unattributed': no jobcentre_id).",
            ("jobcentre",),
            r,
        )
        self.jobcentre_assignments = _gauge(
            "nbi_oversight_jobcentre_assignments",
            "Assignments behind each job-centre override rate.",
            ("jobcentre",),
            r,
        )
        self.assessed = _gauge(
            "nbi_oversight_caseworkers_assessed",
            "Caseworkers with at least NBI_OVERSIGHT_MIN_ASSIGNMENTS assignments in the window.",
            (),
            r,
        )
        self.low_override = _gauge(
            "nbi_oversight_caseworkers_low_override",
            "Assessed caseworkers whose override rate is at most NBI_OVERSIGHT_LOW_OVERRIDE_RATE "
            "(possible rubber-stamping).",
            (),
            r,
        )
        self.min_rate = _gauge(
            "nbi_oversight_caseworker_min_override_ratio",
            "Smallest override rate among assessed caseworkers (NaN: none assessed).",
            (),
            r,
        )
        self.threshold = _gauge(
            "nbi_oversight_low_override_threshold_ratio",
            "The configured low override rate (NBI_OVERSIGHT_LOW_OVERRIDE_RATE).",
            (),
            r,
        )
        self._jobcentres: set[str] = set()
        self.rate.set(math.nan)
        self.min_rate.set(math.nan)
        for dimension in OVERSIGHT_DIMENSIONS:
            for group in DIMENSIONS[dimension]:
                self.group_rate.labels(dimension, group).set(math.nan)
                self.group_assignments.labels(dimension, group).set(0)

    def publish(self, report: OversightReport, *, max_jobcentres: int) -> None:
        """Set every gauge from ``report``."""
        self.rate.set(report.overall.rate)
        self.assignments.set(report.overall.assignments)
        self.threshold.set(report.low_rate)
        for dimension in OVERSIGHT_DIMENSIONS:
            for group in DIMENSIONS[dimension]:
                count = report.groups.get((dimension, group), OverrideCount())
                self.group_rate.labels(dimension, group).set(count.rate)
                self.group_assignments.labels(dimension, group).set(count.assignments)
        assessed = report.assessed()
        self.assessed.set(len(assessed))
        self.low_override.set(len(report.low_override()))
        self.min_rate.set(min((c.rate for c in assessed.values()), default=math.nan))
        self._publish_jobcentres(report, max_jobcentres)

    def _publish_jobcentres(self, report: OversightReport, max_jobcentres: int) -> None:
        merged: dict[str, OverrideCount] = {}
        by_size = sorted(report.jobcentres.items(), key=lambda kc: (-kc[1].assignments, kc[0]))
        for key, count in by_size:
            if key not in self._jobcentres and len(self._jobcentres) < max_jobcentres:
                self._jobcentres.add(key)
            label = key if key in self._jobcentres else OTHER_JOBCENTRES
            total = merged.setdefault(label, OverrideCount())
            total.assignments += count.assignments
            total.overrides += count.overrides
        for label in self._jobcentres | set(merged):
            count = merged.get(label, OverrideCount())
            self.jobcentre_rate.labels(label).set(count.rate)
            self.jobcentre_assignments.labels(label).set(count.assignments)
        if OTHER_JOBCENTRES in merged:
            self._jobcentres.add(OTHER_JOBCENTRES)
