"""Feature importance of a kept model version on the service's recent logged decisions.

The rounds are the most recent decisions the model decided (treatment arm, live or shadow:
every record with a pmf and a recommendation), with their context and eligible offers as
logged; the importance itself is :func:`bandit.importance.permutation_importance` (the
model's sensitivity to each case fact over that population, not a causal effect). Used by
``nbi importance``, ``GET /v1/models/{version}/importance`` and the model card.
"""

from __future__ import annotations

from collections import deque

from bandit.catalog import Catalog
from bandit.errors import BanditError
from bandit.importance import ImportanceReport, Round, permutation_importance
from bandit.policies import Policy
from bandit.records import DecisionRecord
from service.lifecycle import LifecycleStore, load_snapshot_policy

DEFAULT_ROUNDS = 200
"""Recent decisions used by default (each feature costs ``rounds * repeats`` predictions)."""
DEFAULT_REPEATS = 5
MAX_ROUNDS = 5000
MAX_REPEATS = 50


def recent_rounds(store: LifecycleStore, catalog: Catalog, n: int) -> list[Round]:
    """The ``n`` most recent decisions with a pmf and a recommendation, as rounds (offers no
    longer in the catalog leave their decision out)."""
    recent: deque[DecisionRecord] = deque(maxlen=n)
    for record in store.iter_records():
        if record.pmf and record.recommended is not None and record.recommended in record.eligible:
            recent.append(record)
    out: list[Round] = []
    for record in recent:
        try:
            actions = tuple(catalog.action(a) for a in record.eligible)
        except (BanditError, KeyError):
            continue
        out.append(Round(record.context, actions, record.eligible.index(record.recommended)))
    return out


def policy_importance(
    policy: Policy,
    version: str,
    rounds: list[Round],
    *,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
) -> ImportanceReport:
    """Importance of ``policy`` on ``rounds`` (an empty report with a note when fewer than
    two rounds)."""
    if len(rounds) < 2:  # noqa: PLR2004
        note = f"{len(rounds)} logged decisions with a pmf: too few for permutation importance"
        return ImportanceReport(version, policy.name, len(rounds), repeats, seed, (), note)
    features = permutation_importance(policy, rounds, repeats=repeats, seed=seed)
    note = (
        f"Permutation importance on the {len(rounds)} most recent logged decisions, {repeats} "
        f"permutations per feature (seed {seed}): mean absolute change of the model's expected "
        "reward for the logged offer, total-variation change of the pmf and share of changed "
        "top choices. It measures what the model relies on, not a causal effect."
    )
    return ImportanceReport(version, policy.name, len(rounds), repeats, seed, tuple(features), note)


def model_importance(  # noqa: PLR0913
    store: LifecycleStore,
    catalog: Catalog,
    version: str,
    *,
    rounds: int = DEFAULT_ROUNDS,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
) -> ImportanceReport:
    """Permutation importance of the kept ``version`` on the ``rounds`` most recent decisions.

    Raises
    ------
    service.lifecycle.UnknownModelError
        ``version`` is not kept.
    """
    policy = load_snapshot_policy(store, version)
    return policy_importance(
        policy, version, recent_rounds(store, catalog, rounds), repeats=repeats, seed=seed
    )


def format_importance(report: ImportanceReport) -> list[str]:
    """The report as aligned text lines."""
    header = (
        f"{'feature':<24} {'reward change (sd)':>20} {'pmf change (sd)':>18} "
        f"{'top changed':>12} {'present':>8}"
    )
    lines = [f"model {report.version} ({report.policy})", header, "-" * len(header)]
    for f in report.features:
        reward = f"{f.reward_change:.4f} ({f.reward_change_sd:.4f})"
        pmf = f"{f.pmf_change:.4f} ({f.pmf_change_sd:.4f})"
        lines.append(
            f"{f.feature:<24} {reward:>20} {pmf:>18} {f.top_change:>12.1%} {f.present:>8.0%}"
        )
    lines.append(report.note)
    return lines
