"""``nbi power`` and :mod:`offline_eval.power` against a hand computation with scipy.stats.norm."""

from __future__ import annotations

import json
import math

import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from bandit.errors import InvalidInputError
from offline_eval import power
from offline_eval.rct import mde as rct_mde
from service.cli import build_app

RUNNER = CliRunner()


def _power(*args: object) -> dict:
    res = RUNNER.invoke(build_app(), ["power", *[str(a) for a in args], "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _hand_mde(var, n, share, *, alpha=0.05, pw=0.8, deff=1.0, r2=0.0):
    n_c, n_t = n * share, n * (1 - share)
    k = norm.ppf(1 - alpha / 2) + norm.ppf(pw)
    return k * math.sqrt(var * (1 / n_t + 1 / n_c) * deff * (1 - r2))


def test_binary_mde_matches_hand_computation():
    # 600 citizens a week for 52 weeks, 20 % control, p = 0.6.
    doc = _power("--baseline-rate", 0.6, "--inflow", 600, "--duration", 52)
    assert doc["n_total"] == pytest.approx(31_200)
    assert doc["mde"] == pytest.approx(_hand_mde(0.6 * 0.4, 31_200, 0.2), rel=1e-12)
    assert doc["design_effect"] == 1.0 and doc["solved_for"] == "mde"


def test_continuous_mde_matches_hand_computation_with_options():
    doc = _power(
        "--sd", 8, "--inflow", 1500, "--per", "month", "--duration", 12,
        "--control-share", 0.3, "--r-squared", 0.2, "--alpha", 0.01, "--power", 0.9,
    )  # fmt: skip
    hand = _hand_mde(64.0, 18_000, 0.3, alpha=0.01, pw=0.9, r2=0.2)
    assert doc["mde"] == pytest.approx(hand, rel=1e-12)
    assert doc["outcome"] == "continuous" and doc["per"] == "month"


def test_clustered_mde_fixed_cluster_size_matches_hand_computation():
    # 40 caseworkers with about 50 citizens each over the trial, ICC 0.03.
    doc = _power(
        "--baseline-rate", 0.35, "--inflow", 2000, "--duration", 1,
        "--icc", 0.03, "--cluster-size", 50,
    )  # fmt: skip
    deff = 1 + (50 - 1) * 0.03
    assert doc["design_effect"] == pytest.approx(deff, rel=1e-12)
    assert doc["mde"] == pytest.approx(_hand_mde(0.35 * 0.65, 2000, 0.2, deff=deff), rel=1e-12)


def test_clustered_continuous_fixed_cluster_count_and_unequal_sizes():
    # 12 job centres, 3,000 citizens a month for 12 months: m = 3,000; CV of sizes 0.4.
    doc = _power(
        "--sd", 8, "--inflow", 3000, "--per", "month", "--duration", 12,
        "--icc", 0.01, "--clusters", 12, "--cluster-cv", 0.4, "--control-share", 0.5,
    )  # fmt: skip
    m = 36_000 / 12
    deff = 1 + ((1 + 0.4**2) * m - 1) * 0.01
    assert doc["mean_cluster_size"] == pytest.approx(m)
    assert doc["mde"] == pytest.approx(_hand_mde(64.0, 36_000, 0.5, deff=deff), rel=1e-12)
    floor = (norm.ppf(0.975) + norm.ppf(0.8)) * math.sqrt(64 * 4 * 1.16 * 0.01 / 12)
    assert doc["mde_floor"] == pytest.approx(floor, rel=1e-12)


@pytest.mark.parametrize(
    "args",
    [
        ("--baseline-rate", 0.6, "--inflow", 700, "--r-squared", 0.15),
        ("--sd", 5, "--inflow", 400, "--icc", 0.02, "--cluster-size", 30),
        ("--baseline-rate", 0.3, "--inflow", 900, "--icc", 0.01, "--clusters", 200),
    ],
)
def test_duration_for_target_mde_inverts_the_mde(args):
    target = 0.03 if "--baseline-rate" in args else 0.25
    doc = _power(*args, "--mde", target)
    assert doc["solved_for"] == "duration" and doc["mde"] == pytest.approx(target, rel=1e-9)
    again = _power(*args, "--duration", doc["duration"])
    assert again["mde"] == pytest.approx(target, rel=1e-9)


def test_human_table_and_bad_input():
    res = RUNNER.invoke(
        build_app(), ["power", "--baseline-rate", "0.6", "--inflow", "700", "--duration", "52"]
    )
    assert res.exit_code == 0 and "MDE" in res.stdout and "pp" in res.stdout
    for args, text in [
        (["--inflow", "700", "--duration", "52"], "exactly one of a baseline rate"),
        (["--baseline-rate", "0.6", "--inflow", "700"], "exactly one of --duration"),
        (["--baseline-rate", "1.2", "--inflow", "7", "--duration", "5"], "baseline rate"),
        (["--sd", "3", "--inflow", "7", "--duration", "5", "--icc", "0.1"], "cluster size"),
        (
            ["--sd", "3", "--inflow", "7", "--mde", "0.1", "--icc", "0.1", "--clusters", "4"],
            "never",
        ),
    ]:
        res = RUNNER.invoke(build_app(), ["power", *args])
        assert res.exit_code == 2, res.output
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0], lines


def test_rct_mde_delegates_to_the_one_convention():
    assert rct_mde(0.6, 14_400, 3_600) == pytest.approx(power.mde(0.24, 14_400, 3_600), rel=1e-15)
    assert rct_mde(0.6, 14_400, 3_600) == pytest.approx(_hand_mde(0.24, 18_000, 0.2), rel=1e-12)


def test_simulator_mde_uses_the_one_convention():
    from simulator.report import _mde

    assert _mde(0.6, 14_400, 3_600) == pytest.approx(_hand_mde(0.24, 18_000, 0.2), rel=1e-12)


def test_design_effect_and_validation():
    assert power.design_effect(0.05, 21) == pytest.approx(2.0)
    assert power.design_effect(0.05, 21, cv=1.0) == pytest.approx(1 + (2 * 21 - 1) * 0.05)
    with pytest.raises(InvalidInputError):
        power.mde(0.24, 10, 10, r_squared=1.0)
    with pytest.raises(InvalidInputError):
        power.Design(control_share=0.2, inflow=10, sd=1.0, cluster_size=5, n_clusters=3)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        # QA D14: power 0.01 < alpha / 2 gave an MDE of -0.235 pp; power = alpha is no test either
        (["--duration", "52", "--power", "0.01"], "power above alpha (alpha < power < 1)"),
        (["--duration", "52", "--power", "0.05"], "got power 0.05 with alpha 0.05"),
        (["--duration", "52", "--power", "0.2", "--alpha", "0.3"], "got power 0.2 with alpha 0.3"),
        # an effect of 200 pp on a 0/1 outcome at p = 0.6 printed "duration 0.0 weeks"
        (["--mde", "2"], "the MDE must be below 0.6"),
        (["--mde", "0.6"], "the MDE must be below 0.6"),
        # 0.01 citizens a week for a week printed "citizens 0 (0 in control)"
        (["--inflow", "0.01", "--duration", "1"], "a trial needs at least 2 per arm"),
        (["--inflow", "5", "--duration", "1"], "4 citizens in treatment and 1 in control"),
        # 10 citizens: an MDE of 2.8016 sqrt(0.24 (1/8 + 1/2)) = 109 pp, more than the rate moves
        (["--inflow", "10", "--duration", "1"], "the MDE would be 1.09, more than a 0/1 outcome"),
    ],
)
def test_impossible_power_mde_and_tiny_designs_are_refused(args, text):
    base = ["power", "--baseline-rate", "0.6"]
    if "--inflow" not in args:
        base += ["--inflow", "700"]
    res = RUNNER.invoke(build_app(), [*base, *args])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0], lines


def test_edges_of_the_new_rules_still_plan():
    # power just above alpha: the MDE is positive, z(1 - a/2) + z(power) by hand
    doc = _power("--baseline-rate", "0.6", "--inflow", "700", "--duration", "52", "--power", "0.06")
    assert doc["mde"] > 0
    assert doc["mde"] == pytest.approx(_hand_mde(0.24, 700 * 52, 0.2, pw=0.06), rel=1e-12)
    # a large harmful effect is detectable at p = 0.6 (0.6 - 0.55 > 0), so it is a valid target
    doc = _power("--baseline-rate", "0.6", "--inflow", "700", "--mde", "0.55")
    assert doc["mde"] == pytest.approx(0.55, rel=1e-9) and doc["n_control"] >= 2
    # 2 citizens per arm is the smallest design; a continuous outcome has no MDE bound
    doc = _power("--sd", "8", "--inflow", "4", "--duration", "1", "--control-share", "0.5")
    assert doc["n_control"] == 2 and doc["mde"] == pytest.approx(_hand_mde(64, 4, 0.5), rel=1e-12)
    with pytest.raises(InvalidInputError, match="power above alpha"):
        power.z_sum(0.05, 0.025)
