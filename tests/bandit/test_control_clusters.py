"""Cluster randomisation: the arm per caseworker or job centre, stable, balanced, fingerprinted."""

from __future__ import annotations

import math

import pytest

from bandit.control import ExperimentConfig, Group, MissingClusterError, Unit
from bandit.errors import InvalidInputError, SensitiveDataError
from bandit.privacy import pseudonymise, pseudonymise_cluster

KEY = b"test-pseudonym-key-0001"
SALT = b"test-experiment-salt-01"
Z_99_9 = 3.2905267314919255  # two-sided 99.9 % normal quantile


def _clusters(n: int, unit: str = "caseworker") -> list[str]:
    return [pseudonymise_cluster(f"cw-{i}", KEY, unit) for i in range(n)]


def test_every_citizen_of_a_cluster_gets_the_clusters_arm() -> None:
    for roster in ((), tuple(_clusters(12))):
        cfg = ExperimentConfig(salt=SALT, unit=Unit.CASEWORKER, clusters=roster)
        for cluster in _clusters(12):
            arms = {cfg.group_for(pseudonymise(f"c{i}", KEY), cluster) for i in range(50)}
            assert len(arms) == 1
            same = ExperimentConfig(salt=SALT, unit=Unit.CASEWORKER, clusters=roster)
            assert same.group_for("p_other", cluster) in arms


def test_coin_per_cluster_share_within_binomial_interval() -> None:
    # Without a roster each cluster is a Bernoulli(0.2) coin: binomial share.
    cfg = ExperimentConfig(salt=SALT, control_share=0.2, unit=Unit.JOBCENTRE)
    g = 20_000
    control = sum(cfg.group_for("p_x", c) is Group.CONTROL for c in _clusters(g, "jobcentre"))
    assert abs(control / g - 0.2) <= Z_99_9 * math.sqrt(0.2 * 0.8 / g)


@pytest.mark.parametrize(("g", "share"), [(8, 0.2), (12, 0.2), (30, 0.25), (7, 0.5), (94, 0.3)])
def test_roster_gives_the_exact_share_for_few_clusters(g: int, share: float) -> None:
    roster = tuple(_clusters(g))
    cfg = ExperimentConfig(salt=SALT, control_share=share, unit=Unit.CASEWORKER, clusters=roster)
    control = sum(cfg.group_for("p_x", c) is Group.CONTROL for c in roster)
    assert control == math.floor(share * g + 0.5)
    assert abs(control / g - share) <= 1 / (2 * g)
    # the roster's order does not matter; a different salt is a different draw
    flipped = ExperimentConfig(
        salt=SALT, control_share=share, unit=Unit.CASEWORKER, clusters=roster[::-1]
    )
    assert [cfg.group_for("p", c) for c in roster] == [flipped.group_for("p", c) for c in roster]


def test_roster_assignment_varies_with_the_salt() -> None:
    roster = tuple(_clusters(40))
    arms = {
        tuple(
            ExperimentConfig(salt=salt, unit=Unit.CASEWORKER, clusters=roster).group_for("p", c)
            for c in roster
        )
        for salt in (SALT, b"another-salt-0000000", b"a-third-salt-00000000")
    }
    assert len(arms) == 3


def test_cluster_not_on_the_roster_falls_back_to_its_coin() -> None:
    roster = tuple(_clusters(10))
    cfg = ExperimentConfig(salt=SALT, unit=Unit.CASEWORKER, clusters=roster)
    newcomer = pseudonymise_cluster("cw-new", KEY, "caseworker")
    assert cfg.group_for("p", newcomer) is cfg.group_of(newcomer)


def test_unit_and_roster_are_part_of_the_fingerprint() -> None:
    citizen = ExperimentConfig(salt=SALT)
    caseworker = ExperimentConfig(salt=SALT, unit=Unit.CASEWORKER)
    jobcentre = ExperimentConfig(salt=SALT, unit=Unit.JOBCENTRE)
    roster = ExperimentConfig(salt=SALT, unit=Unit.JOBCENTRE, clusters=tuple(_clusters(5)))
    other_roster = ExperimentConfig(salt=SALT, unit=Unit.JOBCENTRE, clusters=tuple(_clusters(6)))
    prints = {c.fingerprint for c in (citizen, caseworker, jobcentre, roster, other_roster)}
    assert len(prints) == 5
    assert "caseworker" in caseworker.fingerprint and "jobcentre" in jobcentre.fingerprint


def test_missing_cluster_and_bad_configs_are_clear_errors() -> None:
    cfg = ExperimentConfig(salt=SALT, unit=Unit.JOBCENTRE)
    with pytest.raises(MissingClusterError, match="send `jobcentre_id`"):
        cfg.group_for("p_abc", None)
    assert ExperimentConfig(salt=SALT).group_for("p_abc", None) in (Group.CONTROL, Group.TREATMENT)
    with pytest.raises(InvalidInputError, match="cluster unit"):
        ExperimentConfig(salt=SALT, clusters=("c_1", "c_2"))
    with pytest.raises(InvalidInputError, match="once"):
        ExperimentConfig(salt=SALT, unit=Unit.CASEWORKER, clusters=("c_1", "c_1"))
    with pytest.raises(ValueError, match="'school'"):
        ExperimentConfig(salt=SALT, unit="school")  # type: ignore[arg-type]


def test_cluster_pseudonyms_are_keyed_and_domain_separated() -> None:
    c = pseudonymise_cluster("CW-17", KEY, "caseworker")
    assert c.startswith("c_") and "CW-17" not in c
    assert c != pseudonymise_cluster("CW-17", KEY, "jobcentre")
    assert c != pseudonymise_cluster("CW-17", b"another-key-000000000", "caseworker")
    with pytest.raises(SensitiveDataError, match="caseworker_id"):
        pseudonymise_cluster("010190-1234", KEY, "caseworker")
    with pytest.raises(InvalidInputError, match="non-empty"):
        pseudonymise_cluster("  ", KEY, "caseworker")
