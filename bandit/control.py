"""Control-arm assignment: a stable, model-independent, auditable coin per citizen or cluster.

``u = HMAC-SHA256(salt, pseudonym)`` read as a number in [0, 1); the citizen is in the control
group when ``u < control_share``. The same pseudonym always gets the same group; changing the
model cannot change anyone's group. The salt, share and start date form the experiment config,
which is logged with every record (``ExperimentConfig.fingerprint``).

Cluster randomisation (``unit = "caseworker"`` or ``"jobcentre"``): every citizen of a cluster
gets the cluster's arm, so caseworkers who see recommendations cannot carry them over to their
control citizens (spill-over). The cluster's pseudonym (``bandit.privacy.pseudonymise_cluster``)
takes the place of the citizen's:

* with a **roster** (the clusters of the trial, fixed at its start), the clusters are ordered by
  their HMAC number ``u`` and the first ``round(control_share x G)`` are the control arm. The
  count is exact (|share of clusters in control - control_share| <= 1 / (2G)), so even 8 job
  centres get the intended share, and the assignment is stable while the roster is. A cluster
  missing from the roster (a caseworker hired during the trial) falls back to ``u <
  control_share``;
* without a roster every cluster is a Bernoulli draw ``u < control_share``: stable without any
  coordination, but the share of clusters in control is only binomially close to
  ``control_share`` (with 10 clusters at 0.2, no control cluster at all 11 % of the time).

The unit and a hash of the roster are part of the fingerprint, so changing either is visible in
every record.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from bandit.errors import InvalidInputError

DEFAULT_CONTROL_SHARE = 0.2
_SCALE = float(2**64)


class Group(StrEnum):
    """Arm of the outer RCT."""

    TREATMENT = "treatment"
    CONTROL = "control"


class Unit(StrEnum):
    """What the control arm is assigned to: each citizen, or every citizen of a cluster."""

    CITIZEN = "citizen"
    CASEWORKER = "caseworker"
    JOBCENTRE = "jobcentre"


class MissingClusterError(InvalidInputError):
    """The experiment randomises clusters and the request does not say which cluster."""


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    """The outer RCT's fixed configuration.

    Parameters
    ----------
    salt, control_share, start_date, name
        The coin's secret salt, the control share, the start date and the experiment's name.
    unit
        Randomisation unit: ``citizen`` (default), ``caseworker`` or ``jobcentre``.
    clusters
        Optional roster of the trial's cluster pseudonyms (cluster units only): balanced,
        HMAC-ordered assignment of exactly ``round(control_share x G)`` control clusters.

    Examples
    --------
    >>> cfg = ExperimentConfig(salt=b"experiment-salt-2026", control_share=0.2)
    >>> cfg.group_of("p_abc") == cfg.group_of("p_abc")
    True
    >>> jc = ExperimentConfig(salt=b"experiment-salt-2026", unit=Unit.JOBCENTRE,
    ...                       clusters=tuple(f"c_{i}" for i in range(8)))
    >>> sum(jc.group_for("p_abc", f"c_{i}") is Group.CONTROL for i in range(8))  # round(1.6)
    2
    """

    salt: bytes
    control_share: float = DEFAULT_CONTROL_SHARE
    start_date: date = date(2026, 1, 1)
    name: str = "nbi-rct"
    unit: Unit = Unit.CITIZEN
    clusters: tuple[str, ...] = ()
    _control_clusters: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.control_share < 1.0:
            msg = f"Expected 0 <= control_share < 1, got {self.control_share}"
            raise InvalidInputError(msg)
        if len(self.salt) < 16:  # noqa: PLR2004
            msg = f"Expected an experiment salt of at least 16 bytes, got {len(self.salt)}"
            raise InvalidInputError(msg)
        unit = Unit(self.unit)
        object.__setattr__(self, "unit", unit)
        if self.clusters and unit is Unit.CITIZEN:
            msg = "A cluster roster needs a cluster unit (caseworker or jobcentre), not citizen"
            raise InvalidInputError(msg)
        if len(set(self.clusters)) != len(self.clusters):
            msg = "Expected every cluster once in the roster"
            raise InvalidInputError(msg)
        ordered = sorted(self.clusters, key=lambda c: (self.uniform_of(c), c))
        n_control = math.floor(self.control_share * len(ordered) + 0.5)
        object.__setattr__(self, "_control_clusters", frozenset(ordered[:n_control]))

    def uniform_of(self, pseudonym: str) -> float:
        """The citizen's fixed uniform number in [0, 1)."""
        digest = hmac.new(self.salt, pseudonym.encode("utf-8"), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") / _SCALE

    def group_of(self, pseudonym: str) -> Group:
        """Arm of the unit (citizen or cluster) with this pseudonym, by its coin alone."""
        return Group.CONTROL if self.uniform_of(pseudonym) < self.control_share else Group.TREATMENT

    @property
    def clustered(self) -> bool:
        """True when the arm is assigned per caseworker or job centre."""
        return self.unit is not Unit.CITIZEN

    def cluster_group(self, cluster_key: str) -> Group:
        """Arm of a cluster: by the roster when it lists the cluster, else by its coin."""
        if self.clusters and cluster_key in self.clusters:
            return Group.CONTROL if cluster_key in self._control_clusters else Group.TREATMENT
        return self.group_of(cluster_key)

    def group_for(self, citizen_key: str, cluster_key: str | None = None) -> Group:
        """Arm of a citizen: the citizen's own coin, or the arm of the citizen's cluster.

        Raises
        ------
        MissingClusterError
            When the unit is a cluster and ``cluster_key`` is missing.
        """
        if not self.clustered:
            return self.group_of(citizen_key)
        if cluster_key is None:
            msg = (
                f"The control arm is assigned by {self.unit.value}: "
                f"send `{self.unit.value}_id` with the request"
            )
            raise MissingClusterError(msg)
        return self.cluster_group(cluster_key)

    @property
    def fingerprint(self) -> str:
        """Short id of this config (share, start, name, salt hash; unit and roster hash for
        cluster randomisation), for logging.

        Examples
        --------
        >>> salt = b"experiment-salt-2026"
        >>> ExperimentConfig(salt=salt).fingerprint
        'nbi-rct:0.2:2026-01-01:eca329f5'
        >>> ExperimentConfig(salt=salt, unit=Unit.CASEWORKER).fingerprint
        'nbi-rct:0.2:2026-01-01:eca329f5:caseworker'
        """
        salt_id = hashlib.sha256(self.salt).hexdigest()[:8]
        base = f"{self.name}:{self.control_share:g}:{self.start_date.isoformat()}:{salt_id}"
        if not self.clustered:
            return base
        if not self.clusters:
            return f"{base}:{self.unit.value}"
        roster = hashlib.sha256("\n".join(sorted(self.clusters)).encode("utf-8")).hexdigest()[:8]
        return f"{base}:{self.unit.value}:{len(self.clusters)}-{roster}"
