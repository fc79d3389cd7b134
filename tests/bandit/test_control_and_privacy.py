from __future__ import annotations

import math

import pytest

from bandit.control import ExperimentConfig, Group
from bandit.errors import InvalidInputError
from bandit.privacy import is_pseudonym, looks_like_cpr, pseudonymise

KEY = b"test-pseudonym-key-0001"
SALT = b"test-experiment-salt-01"
Z_99_9 = 3.2905267314919255  # two-sided 99.9 % normal quantile


def test_control_share_within_binomial_interval_on_100k() -> None:
    cfg = ExperimentConfig(salt=SALT, control_share=0.2)
    n = 100_000
    control = sum(
        cfg.group_of(pseudonymise(f"citizen-{i}", KEY)) is Group.CONTROL for i in range(n)
    )
    half_width = Z_99_9 * math.sqrt(0.2 * 0.8 / n)
    assert abs(control / n - 0.2) <= half_width


def test_group_is_stable_and_model_independent() -> None:
    cfg = ExperimentConfig(salt=SALT, control_share=0.2)
    same_cfg = ExperimentConfig(salt=SALT, control_share=0.2)
    keys = [pseudonymise(f"c{i}", KEY) for i in range(500)]
    assert [cfg.group_of(k) for k in keys] == [same_cfg.group_of(k) for k in keys]
    assert [cfg.group_of(k) for k in keys] == [cfg.group_of(k) for k in keys]
    # a different salt is a different experiment: assignments differ for some citizens
    other = ExperimentConfig(salt=b"another-salt-0000000", control_share=0.2)
    assert [cfg.group_of(k) for k in keys] != [other.group_of(k) for k in keys]


def test_control_share_bounds_and_salt() -> None:
    with pytest.raises(InvalidInputError, match="control_share"):
        ExperimentConfig(salt=SALT, control_share=1.0)
    with pytest.raises(InvalidInputError, match="salt"):
        ExperimentConfig(salt=b"short", control_share=0.2)
    assert ExperimentConfig(salt=SALT, control_share=0.0).group_of("p_x") is Group.TREATMENT


def test_pseudonym_is_keyed_and_hides_the_id() -> None:
    p = pseudonymise("010190-1234", KEY)
    assert is_pseudonym(p)
    assert "0101901234" not in p and "010190" not in p
    assert p != pseudonymise("010190-1234", b"another-key-000000000")
    assert p == pseudonymise(" 0101901234 ", KEY)
    with pytest.raises(InvalidInputError, match="non-empty"):
        pseudonymise("  ", KEY)
    with pytest.raises(InvalidInputError, match="at least 16 bytes"):
        pseudonymise("x", b"k")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("010190-1234", True),
        ("3112991234", True),
        ("a 010190 1234 b", True),
        ("9999999999", False),
        ("12345", False),
        ("python", False),
        ("01019012345", False),
    ],
)
def test_cpr_detection(text: str, expected: bool) -> None:
    assert looks_like_cpr(text) is expected
