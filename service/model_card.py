"""A model card per kept model version (``nbi models card VERSION --out FILE``).

Built from the store alone, so it states what the service knows about the version: status and
training (``Model``), the decisions logged before the snapshot and those it served (``Data
window``), the case facts it reads with their permutation importance (``Features``,
:mod:`service.importance`), its exploration settings and the pmf they give on recent decisions
(``Exploration``), the off-policy comparison with the live model and practice as usual
(``Off-policy comparison``, :mod:`service.model_compare`), the fairness audit of the settled
decisions it served (``Fairness audit``, :mod:`offline_eval.fairness`) and ``Known limits``.
Rendered as Markdown or self-contained HTML by :mod:`service.model_card_render`. No raw or
pseudonymised citizen id appears in a card: only counts, rates, dates and model settings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np

from bandit.catalog import Catalog
from bandit.context import ProtectedAttributes
from bandit.control import Group
from bandit.encoding import BANDS, NUMERIC_SCALES
from bandit.importance import CV_GROUP, ImportanceReport, Round
from bandit.policies import Policy
from bandit.records import DecisionRecord
from service.export import age_band
from service.importance import DEFAULT_REPEATS, DEFAULT_ROUNDS, policy_importance, recent_rounds
from service.lifecycle import LifecycleStore, load_snapshot_policy, read_state
from service.model_compare import CompareReport, compare

if TYPE_CHECKING:
    from offline_eval.ci import Estimate
    from service.config import Settings

SECTIONS = (
    "Model",
    "Data window",
    "Features",
    "Exploration",
    "Off-policy comparison",
    "Fairness audit",
    "Known limits",
)
"""The card's sections, in order."""
MIN_FAIRNESS_GROUP = 30
"""Groups with fewer settled decisions per arm than this are called out as too small."""
_SKIP_PARAMS = frozenset({"quiet"})


class CardStore(LifecycleStore, Protocol):
    """The store as the card reads it: the lifecycle's view plus protected attributes."""

    def get_protected(self, event_id: str) -> ProtectedAttributes | None:
        """The protected attributes of one decision (fairness audit only)."""


@dataclass(frozen=True, slots=True)
class Section:
    """One section: paragraphs, an optional table (headers, rows) and bullet points."""

    title: str
    paragraphs: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    bullets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelCard:
    """The card's content, rendered by :mod:`service.model_card_render`."""

    version: str
    generated_at: float
    sections: tuple[Section, ...]
    importance: ImportanceReport
    facts: dict[str, float] = field(default_factory=dict)
    """The card's key numbers (for tests and JSON)."""

    def section(self, title: str) -> Section:
        """The section called ``title``."""
        return next(s for s in self.sections if s.title == title)


def _day(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _span(records: Sequence[DecisionRecord]) -> str:
    if not records:
        return "none"
    return f"{_day(records[0].timestamp)} to {_day(records[-1].timestamp)}"


# ---------------------------------------------------------------------- sections


def _model_section(
    version: str, created: float, policy: Policy, store: LifecycleStore, settings: Settings
) -> Section:
    state = read_state(store)
    status = "approved: serves" if version == state.approved else "candidate (not approved)"
    if version == state.approved and state.kill is not None:
        status += f" (kill switch on: {state.kill} serves instead)"
    unit = "citizen-weeks" if getattr(policy, "learns_hazard", False) else "settled outcomes"
    rows = (
        ("version", version),
        ("status", status),
        ("policy", policy.name),
        ("snapshot created", _day(created)),
        ("learned from", f"{policy.n_updates} {unit}"),
        ("serving mode of the deployment", state.serving_mode(settings.model_approval)),
        ("approval rule", settings.model_approval),
    )
    return Section("Model", headers=("", ""), rows=rows)


def _data_section(
    records: Sequence[DecisionRecord], version: str, created: float, policy: Policy
) -> tuple[Section, dict[str, float]]:
    before = [r for r in records if r.timestamp <= created]
    settled_before = [r for r in before if r.reward is not None]
    served = [r for r in records if r.model_version == version and r.pmf]
    live = [r for r in served if r.mode == "live"]
    rows = (
        ("decisions logged before the snapshot", str(len(before)), _span(before)),
        ("of which settled (outcome known)", str(len(settled_before)), _span(settled_before)),
        ("decisions made by this version", str(len(served)), _span(served)),
        ("of which served live", str(len(live)), _span(live)),
    )
    text = (
        f"The model learned from {policy.n_updates} outcomes that reached the learner before "
        f"the snapshot of {_day(created)}: the settled treatment decisions whose "
        "recommendation the caseworker followed, in the order they settled. Decisions are "
        "dated when they were made; outcomes arrive up to the reward horizon later."
    )
    facts = {
        "decisions_before": float(len(before)),
        "settled_before": float(len(settled_before)),
        "served": float(len(served)),
    }
    return Section("Data window", (text,), ("", "decisions", "period"), rows), facts


def _kind(name: str, keys: tuple[str, ...], rounds: Sequence[Round]) -> str:
    if name == CV_GROUP:
        return f"CV token indicators ({len(keys)} seen), permuted together"
    values = [r.context[name] for r in rounds if name in r.context]
    if not values:
        return "-"
    if isinstance(values[0], bool):
        return "yes/no indicator"
    if isinstance(values[0], str):
        levels = len(set(values))
        return f"categorical ({levels} level{'s' if levels != 1 else ''} seen)"
    kind = f"numeric / {NUMERIC_SCALES[name]:g}" if name in NUMERIC_SCALES else "numeric"
    if name in BANDS:
        kind += f", bands at {', '.join(f'{c:g}' for c in BANDS[name])}"
    return kind


def _features_section(
    importance: ImportanceReport, rounds: Sequence[Round], policy: Policy
) -> Section:
    from bandit.importance import feature_groups

    groups = feature_groups(rounds)
    rows = tuple(
        (
            f.feature,
            _kind(f.feature, groups.get(f.feature, ()), rounds),
            f"{f.reward_change:.4f} ± {f.reward_change_sd:.4f}",
            f"{f.pmf_change:.4f} ± {f.pmf_change_sd:.4f}",
            f"{100 * f.top_change:.1f} %",
            f"{100 * f.present:.0f} %",
        )
        for f in importance.features
    )
    params = policy.get_params()
    protected = sorted(
        {k for r in rounds for k in r.context if k.startswith("protected_")}
        | {k for r in rounds for k in r.context if k in ("gender", "origin")}
    )
    offer = (
        "Offer features: family (namespace f), sector (o), provider and length (a); offer id (i) "
        + ("learned" if params.get("offer_ids") else "ignored")
        + f". Interactions: {', '.join(params.get('interactions', ())) or 'none'}."
        if "interactions" in params
        else "Offer features as the policy defines them."
    )
    guard = (
        "Protected attributes (gender, origin) are not model features: none of the "
        f"{len(rounds)} recent contexts contains one."
        if not protected
        else f"WARNING: protected attributes in the model's contexts: {', '.join(protected)}."
    )
    return Section(
        "Features",
        (importance.note, offer, guard),
        ("feature", "encoding", "reward change ± sd", "pmf change ± sd", "top changed", "present"),
        rows,
    )


_ONLY_WITH: dict[str, tuple[str, object]] = {
    "epsilon": ("exploration", "epsilon"),
    "cover": ("exploration", "cover"),
    "gamma_scale": ("exploration", "squarecb"),
    "gamma_exponent": ("exploration", "squarecb"),
    "horizon_weeks": ("target", "hazard"),
    "hazard_buckets": ("target", "hazard"),
}
"""Parameters that matter only with another parameter's value (e.g. epsilon only for
epsilon-greedy exploration)."""


def _relevant(key: str, params: dict[str, object]) -> bool:
    if key in _SKIP_PARAMS:
        return False
    needed = _ONLY_WITH.get(key)
    return needed is None or params.get(needed[0], needed[1]) == needed[1]


def _param(value: object) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _exploration_section(
    policy: Policy, rounds: Sequence[Round]
) -> tuple[Section, dict[str, float]]:
    params = policy.get_params()
    rows = tuple((k, _param(v)) for k, v in params.items() if _relevant(k, params))
    facts: dict[str, float] = {}
    text = ["No recent decisions to measure the pmf on."]
    if rounds:
        pmfs = [policy.probabilities(r.context, r.actions) for r in rounds]
        top = float(np.mean([p.max() for p in pmfs]))
        low = float(min(p.min() for p in pmfs))
        logged = float(np.mean([p[r.logged] for p, r in zip(pmfs, rounds, strict=True)]))
        k = float(np.median([len(r.actions) for r in rounds]))
        facts = {"mean_top_probability": top, "min_probability": low, "median_offers": k}
        text = [
            f"On the {len(rounds)} most recent decisions (median {k:g} eligible offers) this "
            f"version gives its most probable offer {100 * top:.1f} % on average; the smallest "
            f"probability of any eligible offer is {low:.4f} (the floor keeps every offer "
            f"possible) and the logged offers would get {100 * logged:.1f} % on average."
        ]
    return Section("Exploration", tuple(text), ("parameter", "value"), rows), facts


def _cell(est: Estimate | None) -> str:
    return "-" if est is None else f"{est.value:.4f} [{est.ci_low:.4f}, {est.ci_high:.4f}]"


def _compare_section(report: CompareReport) -> Section:
    rows = tuple(
        (r.name, r.version, _cell(r.snips), _cell(r.dr), f"{r.ess:.1f}", str(r.n))
        for r in report.rows
    )
    return Section(
        "Off-policy comparison",
        (report.note,),
        ("policy", "version", "SNIPS [95 %]", "DR [95 %]", "ESS", "n"),
        rows,
    )


def _fairness_rows(
    records: Sequence[DecisionRecord], version: str, store: CardStore, catalog: Catalog
) -> list[dict[str, object]]:
    """Settled decisions of the period this version served live: its treatment decisions
    and the control decisions of the same period (practice as usual), with protected
    attributes (used here only, never written out per person)."""
    mine = [
        r
        for r in records
        if r.group is Group.TREATMENT and r.model_version == version and r.mode == "live"
    ]
    if not mine:
        return []
    start, end = mine[0].timestamp, mine[-1].timestamp
    ids = {r.event_id for r in mine}
    families = {item.id: item.family.value for item in catalog}
    chosen = [
        r
        for r in records
        if start <= r.timestamp <= end
        and (r.event_id in ids or r.group is Group.CONTROL)
        and r.reward is not None
        and not r.censored
    ]
    out: list[dict[str, object]] = []
    for r in chosen:
        attrs = store.get_protected(r.event_id)
        out.append(
            {
                "group": r.group.value,
                "employed": int((r.reward or 0.0) > 0),
                "complied": int(r.complied is True),
                "gender": None if attrs is None or attrs.gender is None else attrs.gender.value,
                "origin": None if attrs is None or attrs.origin is None else attrs.origin.value,
                "age_band": age_band(r.context.get("age")),
                "recommended_family": families.get(r.recommended or ""),
            }
        )
    return out


def _fairness_section(rows: list[dict[str, object]]) -> tuple[Section, dict[str, float]]:
    import pandas as pd

    from offline_eval.errors import ExperimentDataError
    from offline_eval.fairness import audit

    frame = pd.DataFrame(rows)
    arms = set(frame["group"]) if rows else set()
    facts = {"fairness_rows": float(len(rows))}
    if arms != {"treatment", "control"}:
        reason = (
            f"Not audited: {len(rows)} settled decisions in the period this version served live "
            "(the audit needs settled decisions of both arms: the version's treatment decisions "
            "and the control arm's practice as usual in the same period)."
        )
        return Section("Fairness audit", (reason,)), facts
    attributes = [a for a in ("gender", "origin", "age_band") if frame[a].notna().any()]
    try:
        report = audit(frame, attributes=attributes)
    except ExperimentDataError as exc:
        return Section("Fairness audit", (f"Not audited: {exc}",)), facts
    table = []
    small = []
    for g in report.groups.to_dict(orient="records"):
        table.append(
            (
                str(g["attribute"]),
                str(g["level"]),
                str(g["n_treatment"]),
                str(g["n_control"]),
                _rate(g["employment_treatment"]),
                _rate(g["employment_control"]),
                f"{_pp(g['effect'])} [{_pp(g['effect_ci_low'])}, {_pp(g['effect_ci_high'])}]",
                "harm" if g.get("harm_flag") else "",
            )
        )
        if min(int(g["n_treatment"]), int(g["n_control"])) < MIN_FAIRNESS_GROUP:
            small.append(f"{g['attribute']}={g['level']}")
    flagged = report.flagged
    tested = f"{report.n_tested} of {len(report.groups)} groups tested"
    if report.n_tested == 0:
        verdict = f"No harm verdict: {tested} (each needs 2 or more decisions in both arms)."
    else:
        verdict = (
            f"Flagged as harmed (one-sided test, Holm-adjusted, alpha {report.alpha:g}; "
            f"{tested}): " + (", ".join(flagged) if flagged else "none") + "."
        )
    text = [
        f"Settled decisions of the period this version served live: {len(rows)} "
        f"({int((frame['group'] == 'treatment').sum())} of its treatment decisions, "
        f"{int((frame['group'] == 'control').sum())} control). Effect = employment in "
        "treatment minus control, in percentage points, 95 % interval.",
        verdict,
    ]
    if small:
        text.append(
            f"Fewer than {MIN_FAIRNESS_GROUP} decisions in an arm (wide intervals, weak test): "
            + ", ".join(small)
            + "."
        )
    facts["fairness_flagged"] = float(len(flagged))
    headers = (
        "attribute",
        "level",
        "n treatment",
        "n control",
        "employed treatment",
        "employed control",
        "effect [95 %]",
        "flag",
    )
    return Section("Fairness audit", tuple(text), headers, tuple(table)), facts


def _rate(x: object) -> str:
    v = float(x)  # type: ignore[arg-type]
    return "-" if v != v else f"{100 * v:.1f} %"  # noqa: PLR0124 (NaN check)


def _pp(x: object) -> str:
    v = float(x)  # type: ignore[arg-type]
    return "-" if v != v else f"{100 * v:+.1f} pp"  # noqa: PLR0124


def _limits_section(
    policy: Policy, compare_report: CompareReport, importance: ImportanceReport, settings: Settings
) -> Section:
    bullets = [
        "Importance is the model's sensitivity to a case fact over recent decisions, not the "
        "fact's causal effect on finding a job; correlated facts share their importance.",
        "The model learns only from followed recommendations in the treatment arm: offers "
        "caseworkers rarely follow stay uncertain.",
        f"Outcomes arrive up to {settings.horizon_weeks} weeks after a decision: the newest "
        "decisions have not taught the model anything yet.",
        "Off-policy estimates assume every offer this version would choose was possible in the "
        "logged decisions (the exploration floor) and no unmeasured confounding of the logged "
        "choice; their intervals do not cover drift in the population.",
        "Erasure removes a citizen's records, not their past contribution to the model's "
        "aggregate weights (documented in docs/decisions.md).",
    ]
    row = compare_report.row("candidate") if compare_report.rows else None
    if row is None or row.snips is None:
        bullets.append(
            f"Too few followed live decisions ({compare_report.logged_decisions}) for an "
            "off-policy estimate of this version."
        )
    elif row.n and row.ess < 0.1 * row.n:
        bullets.append(
            f"Low effective sample size ({row.ess:.1f} of {row.n}): this version differs much "
            "from the logging policy and its estimate is uncertain."
        )
    if not importance.features:
        bullets.append("Too few recent decisions to measure feature importance.")
    if policy.n_updates < 100:  # noqa: PLR2004
        bullets.append(f"Trained on few outcomes ({policy.n_updates}).")
    return Section("Known limits", bullets=tuple(bullets))


# ---------------------------------------------------------------------- the card


def build_card(  # noqa: PLR0913 (the store, its settings and the importance knobs)
    store: CardStore,
    settings: Settings,
    catalog: Catalog,
    version: str,
    *,
    rounds: int = DEFAULT_ROUNDS,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
) -> ModelCard:
    """The model card of the kept ``version``.

    Raises
    ------
    service.lifecycle.UnknownModelError
        ``version`` is not kept.
    """
    policy = load_snapshot_policy(store, version)
    snapshot = store.get_model(version)
    created = snapshot.created_at if snapshot is not None else time.time()
    records = list(store.iter_records())
    recent = recent_rounds(store, catalog, rounds)
    importance = policy_importance(policy, version, recent, repeats=repeats, seed=seed)
    compare_report = compare(store, settings, catalog, version)
    data, facts = _data_section(records, version, created, policy)
    exploration, explore_facts = _exploration_section(policy, recent)
    fairness, fair_facts = _fairness_section(_fairness_rows(records, version, store, catalog))
    sections = (
        _model_section(version, created, policy, store, settings),
        data,
        _features_section(importance, recent, policy),
        exploration,
        _compare_section(compare_report),
        fairness,
        _limits_section(policy, compare_report, importance, settings),
    )
    facts = {**facts, **explore_facts, **fair_facts, "n_updates": float(policy.n_updates)}
    return ModelCard(version, time.time(), sections, importance, facts)
