"""A returning citizen's spell history, from the service's own records of the pseudonym.

:func:`with_history` adds the history features of :mod:`bandit.history` (``prior_spells``,
``weeks_since_last_spell``, ``last_family``) to a request's model features before the policy
decides, so they are in the decision record's context and therefore in what the learner
learns from (``bandit.engine.record_to_decision`` reads the record's context). The records are
found through the store's pseudonym index (:meth:`~service.store.base.DecisionStore.
decisions_of`, the index erasure uses), one indexed read per request; an erased citizen has no
history. When the case system sent its own history in the context it wins as a whole and the
store is not read.

The RCT arm is not touched here: it is a function of the pseudonym (or of the cluster, see
``docs/decisions.md``), so a returning or transferred citizen keeps it without any lookup.
"""

from __future__ import annotations

import time

from bandit.history import HISTORY_FEATURES, history_features, merge_history, past_decisions
from bandit.types import FeatureValue
from service.runtime import Runtime


def with_history(
    runtime: Runtime, citizen_key: str, features: dict[str, FeatureValue]
) -> dict[str, FeatureValue]:
    """``features`` plus the citizen's history derived from earlier records (unchanged for a
    first spell, or when the case system sent history itself)."""
    if any(name in features for name in HISTORY_FEATURES):
        return features
    records = runtime.store.decisions_of(citizen_key)
    if not records:
        return features
    derived = history_features(
        past_decisions(records, runtime.catalog),
        timestamp=time.time(),
        weeks_unemployed=float(features["weeks_unemployed"]),
    )
    return merge_history(features, derived) if derived else features
