"""Calibration of the no-intervention spell against domain.md 5.1."""

from __future__ import annotations

import math

from simulator.calibration import calibration_moments


def test_moments_within_tolerance_and_exact_matches_sampled() -> None:
    n = 20_000
    moments = calibration_moments(n_per_group=n, seed=11)
    assert len(moments) == 10
    bad = [m for m in moments if not m.ok]
    assert not bad, bad
    for m in moments:
        if m.simulated is None or not m.name.startswith("on_benefit"):
            continue
        # Sampled share vs its exact expectation on the same citizens: binomial SE
        # sqrt(p(1-p)/n) <= 0.0036 for n = 20,000; 5 SE leaves a 1-in-3-million false alarm.
        se = math.sqrt(m.exact * (1 - m.exact) / n)
        assert abs(m.simulated - m.exact) < 5 * se, m


def test_mean_spell_exact_vs_sampled() -> None:
    moments = {(m.group, m.name): m for m in calibration_moments(n_per_group=20_000, seed=5)}
    for group, tol in (("dagpenge", 0.4), ("kontanthjaelp", 1.0)):
        # Completed-spell sd is about 13 (dagpenge) / 24 (kontanthjælp) weeks; with ~19,000
        # completed spells the SE is 0.1 / 0.2 weeks, so 4-5 SE tolerances.
        m = moments[(group, "mean_completed_spell_weeks")]
        assert m.simulated is not None
        assert abs(m.simulated - m.exact) < tol


def test_calibration_fails_when_hazards_are_off() -> None:
    from simulator.config import SimulationConfig

    moments = calibration_moments(SimulationConfig(hazard_scale=(0.6, 0.6)), n_per_group=5000)
    assert any(not m.ok for m in moments)


def test_employment_targets_keep_a_normal_tolerance() -> None:
    # The dagpenge 26-week employment target was once met only by widening its tolerance
    # to +-0.12; it must now hold at the same +-0.03 as the other shares.
    from simulator.calibration import TARGETS

    tolerances = {(g, name): tol for g, name, _, tol in TARGETS}
    assert tolerances[("dagpenge", "employed_week_26")] <= 0.03
    assert tolerances[("kontanthjaelp", "employed_week_26")] <= 0.03


def test_table_q_alone_cannot_hit_the_dagpenge_employment_target() -> None:
    # domain.md 5.1's q = 0.008 with the on-benefit moments held gives ~0.80 employed at
    # week 26 (documented in docs/decisions.md); the calibrated dagpenge q is what fixes it.
    from simulator.config import SimulationConfig

    config = SimulationConfig(non_employment_hazard_dagpenge=0.008, hazard_scale=(1.15, 1.0))
    moments = {(m.group, m.name): m for m in calibration_moments(config, n_per_group=5000)}
    assert moments[("dagpenge", "on_benefit_week_26")].ok
    employed = moments[("dagpenge", "employed_week_26")]
    assert not employed.ok and employed.exact > 0.75
