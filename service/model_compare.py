"""Off-policy comparison of a candidate, the live model and practice as usual.

Data: the most recent ``Settings.ope_window`` settled, uncensored treatment decisions served
**live** whose recommendation the caseworker followed (the events the learner learns from),
with the logged pmf; their propensity is the probability with which the serving policy drew
the recommendation. Shadow and practice (kill switch) records are left out: their logged
propensity is not the probability of the action the caseworker took (docs/decisions.md).

- candidate and live model: SNIPS and DR (cross-fitted ridge reward model on the numeric case
  facts) from :mod:`offline_eval.estimators` with their analytic 95 % intervals, and the
  effective sample size of the importance weights;
- practice as usual: the control arm is an on-policy sample of it, so its value is the control
  arm's mean outcome in the same window (Wilson 95 % interval of the employment share, which
  keeps its width when every outcome is alike; ESS = n).

The reward is 26-week employment, so every value lies in [0, 1]: estimates and interval bounds
are clipped to that range (the truth is always inside it, so clipping keeps an interval's
coverage and can only bring a point estimate closer; a SNIPS interval of [-27.7, 29.5] from a
few dozen followed decisions is shown as [0, 1], "nothing known yet").

The guardrail (``model_approval="guardrail"``) approves a candidate when both its SNIPS and DR
lower bounds are at least the live model's estimate minus ``guardrail_margin``.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bandit.catalog import Catalog
from bandit.control import Group
from bandit.policies import Policy
from bandit.records import DecisionRecord
from offline_eval.ci import Estimate
from offline_eval.diagnostics import diagnose
from offline_eval.estimators.dr import DoublyRobust
from offline_eval.estimators.snips import SNIPS
from offline_eval.logs import LoggedBandit
from service.lifecycle import LifecycleStore, load_snapshot_policy, read_state, serving_policy
from service.summary import wilson

if TYPE_CHECKING:
    from service.config import Settings

MIN_ROUNDS = 10
"""Fewer logged decisions than this: no estimate (and no auto-approval)."""
_Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class CompareRow:
    """One policy's estimates."""

    name: str
    version: str
    snips: Estimate | None
    dr: Estimate | None
    ess: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready dict (``None`` where there is no estimate)."""
        out: dict[str, Any] = {"name": self.name, "version": self.version}
        for key, est in (("snips", self.snips), ("dr", self.dr)):
            out[key] = None if est is None else est.value
            out[f"{key}_low"] = None if est is None else est.ci_low
            out[f"{key}_high"] = None if est is None else est.ci_high
        out["ess"] = self.ess
        out["n"] = self.n
        return out


@dataclass(frozen=True, slots=True)
class CompareReport:
    """Rows for the candidate, the live model and practice as usual."""

    rows: list[CompareRow]
    logged_decisions: int
    note: str

    def row(self, name: str) -> CompareRow:
        """The row called ``name``."""
        return next(r for r in self.rows if r.name == name)


def _usable(record: DecisionRecord) -> bool:
    return (
        record.group is Group.TREATMENT
        and record.mode == "live"
        and record.complied is True
        and record.reward is not None
        and not record.censored
        and bool(record.propensity)
    )


def recent_records(
    store: LifecycleStore, window: int
) -> tuple[list[DecisionRecord], list[DecisionRecord]]:
    """The most recent usable treatment records and settled control records (each at most
    ``window``)."""
    treated: deque[DecisionRecord] = deque(maxlen=window)
    control: deque[DecisionRecord] = deque(maxlen=window)
    for record in store.iter_records():
        if _usable(record):
            treated.append(record)
        elif record.group is Group.CONTROL and record.reward is not None and not record.censored:
            control.append(record)
    return list(treated), list(control)


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, str)


def logged_bandit(records: list[DecisionRecord]) -> tuple[LoggedBandit, list[str]]:
    """The records as :class:`LoggedBandit` over the offers eligible in any of them (numeric
    case facts as context, the logged pmf included); also the offer ids in index order."""
    ids = sorted({a for r in records for a in r.eligible})
    index = {a: i for i, a in enumerate(ids)}
    columns = sorted({k for r in records for k, v in r.context.items() if _numeric(v)})
    context = np.array(
        [[float(r.context.get(c, 0) or 0) for c in columns] for r in records], dtype=float
    ).reshape(len(records), len(columns))
    pmf = np.zeros((len(records), len(ids)))
    for i, r in enumerate(records):
        for a, p in zip(r.eligible, r.pmf, strict=True):
            pmf[i, index[a]] = p
    logs = LoggedBandit(
        context=context,
        action=np.array([index[str(r.recommended)] for r in records], dtype=int),
        reward=np.array([float(r.reward or 0.0) for r in records]),
        propensity=np.array([float(r.propensity or 0.0) for r in records]),
        n_actions=len(ids),
        pmf=pmf,
        context_columns=tuple(columns),
    )
    return logs, ids


def target_matrix(
    policy: Policy, records: list[DecisionRecord], ids: list[str], catalog: Catalog
) -> np.ndarray:
    """``policy``'s pmf over each record's eligible offers, shape ``(n, len(ids))``."""
    index = {a: i for i, a in enumerate(ids)}
    out = np.zeros((len(records), len(ids)))
    for i, r in enumerate(records):
        actions = [catalog.action(a) for a in r.eligible]
        probs = policy.probabilities(r.context, actions)
        for a, p in zip(r.eligible, probs, strict=True):
            out[i, index[a]] = p
    return out


REWARD_RANGE = (0.0, 1.0)
"""Rewards are employment indicators (service/settle.py): every policy value lies here."""


def within_rewards(est: Estimate) -> Estimate:
    """``est`` with its value and bounds clipped to :data:`REWARD_RANGE`.

    Examples
    --------
    >>> within_rewards(Estimate(0.88, -27.7, 29.5, 91)).ci_low
    0.0
    """
    low, high = REWARD_RANGE

    def clip(x: float) -> float:
        return min(max(x, low), high)

    return dataclasses.replace(
        est, value=clip(est.value), ci_low=clip(est.ci_low), ci_high=clip(est.ci_high)
    )


def _policy_row(
    name: str, version: str, policy: Policy, records: list[DecisionRecord], catalog: Catalog
) -> CompareRow:
    if len(records) < MIN_ROUNDS:
        return CompareRow(name, version, None, None, 0.0, len(records))
    logs, ids = logged_bandit(records)
    target = target_matrix(policy, records, ids, catalog)
    snips = within_rewards(SNIPS().estimate(logs, target))
    dr = within_rewards(DoublyRobust().estimate(logs, target))
    return CompareRow(name, version, snips, dr, diagnose(logs, target).ess, len(records))


def _practice_row(control: list[DecisionRecord]) -> CompareRow:
    n = len(control)
    if n < MIN_ROUNDS:
        return CompareRow("practice as usual", "control arm", None, None, float(n), n)
    y = np.array([float(r.reward or 0.0) for r in control])
    mean = float(y.mean())
    if np.isin(y, REWARD_RANGE).all():  # employed or not: the Wilson score interval
        low, high = wilson(int(y.sum()), n, _Z95)
    else:
        half = _Z95 * float(y.std(ddof=1)) / math.sqrt(n)
        low, high = mean - half, mean + half
    est = within_rewards(Estimate(mean, low, high, n, estimator="mean"))
    return CompareRow("practice as usual", "control arm", est, est, float(n), n)


def compare(
    store: LifecycleStore, settings: Settings, catalog: Catalog, candidate: str | None = None
) -> CompareReport:
    """Evaluate ``candidate`` (default: the newest snapshot), the live model and practice as
    usual on the same recent logged decisions.

    Raises
    ------
    service.lifecycle.UnknownModelError
        ``candidate`` is not kept.
    """
    treated, control = recent_records(store, settings.ope_window)
    versions = store.model_versions()
    cand_version = candidate or (versions[0][0] if versions else None)
    approved = read_state(store).approved
    rows = []
    if cand_version is not None:
        cand = load_snapshot_policy(store, cand_version)
        rows.append(_policy_row("candidate", cand_version, cand, treated, catalog))
    live = serving_policy(store, settings)
    live_version = approved or f"{live.model_version} (fresh: nothing approved)"
    rows.append(_policy_row("live", live_version, live, treated, catalog))
    rows.append(_practice_row(control))
    note = (
        f"{len(treated)} followed live treatment decisions (SNIPS, DR with 95 % intervals), "
        f"{len(control)} settled control decisions (practice as usual, on-policy mean with a "
        "Wilson interval); values and bounds clipped to the reward range [0, 1]"
    )
    if len(treated) < MIN_ROUNDS:
        note += f"; fewer than {MIN_ROUNDS} logged decisions: no off-policy estimate"
    return CompareReport(rows, len(treated), note)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The guardrail's decision."""

    passed: bool
    reason: str


def guardrail(store: LifecycleStore, settings: Settings, catalog: Catalog, version: str) -> Verdict:
    """Whether ``version`` may be auto-approved: its SNIPS and DR lower bounds are not below
    the live model's estimates minus ``settings.guardrail_margin``."""
    report = compare(store, settings, catalog, version)
    cand, live = report.row("candidate"), report.row("live")
    if cand.snips is None or cand.dr is None or live.snips is None or live.dr is None:
        return Verdict(False, f"too few logged decisions ({report.logged_decisions})")
    margin = settings.guardrail_margin
    for label, c, ref in (("SNIPS", cand.snips, live.snips), ("DR", cand.dr, live.dr)):
        if c.ci_low < ref.value - margin:
            return Verdict(
                False,
                f"{label} lower bound {c.ci_low:.4f} < live {ref.value:.4f} - margin {margin:g}",
            )
    return Verdict(True, "lower bounds within the margin of the live model")


def format_table(report: CompareReport) -> list[str]:
    """The report as aligned text lines."""

    def cell(est: Estimate | None) -> str:
        return "-" if est is None else f"{est.value:.4f} [{est.ci_low:.4f}, {est.ci_high:.4f}]"

    header = f"{'policy':<18} {'version':<40} {'SNIPS [95 %]':<27} {'DR [95 %]':<27} {'ESS':>8}"
    lines = [header, "-" * len(header)]
    for r in report.rows:
        lines.append(
            f"{r.name:<18} {r.version[:40]:<40} {cell(r.snips):<27} {cell(r.dr):<27} {r.ess:>8.1f}"
        )
    lines.append(report.note)
    return lines


def plot_compare(report: CompareReport, path: Path) -> None:
    """SNIPS and DR with their intervals per policy, as a PNG."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    labelled: set[str] = set()
    for offset, key, color in ((-0.1, "snips", "tab:blue"), (0.1, "dr", "tab:orange")):
        for i, row in enumerate(report.rows):
            est: Estimate | None = getattr(row, key)
            if est is None:
                continue
            ax.errorbar(
                i + offset,
                est.value,
                yerr=[[est.value - est.ci_low], [est.ci_high - est.value]],
                fmt="o",
                color=color,
                capsize=4,
                label=None if key in labelled else key.upper(),
            )
            labelled.add(key)
    ax.set_xticks(range(len(report.rows)), [r.name for r in report.rows])
    ax.set_ylabel("estimated value (reward)")
    ax.set_title("Off-policy comparison on recent logged decisions")
    if labelled:
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "too few logged decisions", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
