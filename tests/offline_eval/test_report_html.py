"""``nbi report``: the answer first, numbers for people, and a page that fits 1280 px and A4.

The layout tests render the report in headless Chromium (Debian's ``chromium``, installed by
``make test``) and measure it over the DevTools protocol: the document must not be wider
than the window, no element may stick out of it and no box may need sideways scrolling,
both on screen at 1280 px and in print media at the width of an A4 page's text.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from offline_eval.evaluation import evaluate_target
from offline_eval.experiment import ExperimentSpec, analyse
from offline_eval.fairness import audit
from offline_eval.logs import write_logs
from offline_eval.report import render_html
from service.cli import build_app
from tests.helpers.chromium import OVERFLOW_JS, HeadlessChromium
from tests.offline_eval.synthetic import make_env

SCREEN_WIDTH = 1280
A4_TEXT_WIDTH = 690  # (210 mm - 2 x 14 mm margins) at 96 px per inch
FAMILIES = (
    "classroom_training",
    "group_meetings",
    "individual_meetings",
    "job_search_course",
    "mentor",
    "private_internship",
    "private_wage_subsidy",
    "public_internship",
    "public_wage_subsidy",
    "standard_contact",
)


def _trial(seed: int = 7, n: int = 2400, n_clusters: int = 60) -> pd.DataFrame:
    """A trial randomised by caseworker: two-sided compliance, unfinished follow-up."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, n_clusters, n)
    control_clusters = rng.permutation(n_clusters)[: n_clusters // 5]
    treated = ~np.isin(cluster, control_clusters)
    cluster_effect = rng.normal(0.0, 0.04, n_clusters)[cluster]
    complied = rng.random(n) < np.where(treated, 0.62, 0.18)
    p = np.clip(0.55 + 0.06 * treated + 0.05 * complied + cluster_effect, 0.02, 0.98)
    weeks = np.where(rng.random(n) < p, rng.integers(1, 27, n), np.nan)
    follow_up = np.where(rng.random(n) < 0.8, 26, rng.integers(4, 26, n))
    weeks = np.where(weeks <= follow_up, weeks, np.nan)
    return pd.DataFrame(
        {
            "group": np.where(treated, "treatment", "control"),
            "employed": (~np.isnan(weeks)).astype(int),
            "benefit_dkk": np.round(rng.gamma(4.0, 4500.0, n) * (1.2 - 0.2 * treated), 2),
            "complied": complied.astype(int),
            "weeks_to_job": weeks,
            "follow_up_weeks": follow_up,
            "caseworker": [f"cw-{c:03d}" for c in cluster],
            "gender": rng.choice(["female", "male", "other"], n, p=[0.49, 0.49, 0.02]),
            "origin": rng.choice(["danish", "western", "non_western"], n, p=[0.7, 0.1, 0.2]),
            "age": rng.integers(18, 66, n),
            "recommended_family": np.where(treated, rng.choice(FAMILIES, n), None),
            "eligible_families": ";".join(FAMILIES),
        }
    )


def _evaluations() -> list:
    env = make_env(seed=2)
    logs, target = env.sample(3000, seed=3)
    k = env.n_actions
    always_first = np.zeros_like(target)
    always_first[:, 0] = 1.0
    uniform = np.full_like(target, 1.0 / k)
    return [
        evaluate_target(logs, target, "vw_contextual_bandit_with_a_long_name"),
        evaluate_target(logs, always_first, "always:private_internship"),
        evaluate_target(logs, uniform, "uniform"),
    ]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The full report (clustered trial, OPE, fairness) and one from the simulator's files."""
    d = tmp_path_factory.mktemp("report")
    trial = _trial()
    spec = ExperimentSpec(cluster_col="caseworker", covariates=("age",))
    full = render_html(
        evaluations=_evaluations(),
        experiment=analyse(trial, spec),
        fairness=audit(trial, attributes=["gender", "origin", "age_band"]),
        sources=[("trial", "trial_with_a_rather_long_file_name_2026-11-30.csv")],
    )
    (d / "full.html").write_text(full, encoding="utf-8")

    from simulator.config import SimulationConfig
    from simulator.policies import build_policy
    from simulator.replay import Replay

    config = SimulationConfig(scale=0.25, offers_per_family=1)
    run = Replay(build_policy("uniform", seed=0, delay="hazard"), config, weeks=3, seed=0).run()
    run.decisions.to_csv(d / "decisions.csv", index=False)
    env = make_env(seed=2)
    logs, target = env.sample(2000, seed=3)
    write_logs(logs, d / "logs.parquet")
    np.save(d / "target.npy", target)
    res = CliRunner().invoke(
        build_app(),
        [
            "report",
            "--out",
            str(d / "sim.html"),
            "--rct",
            str(d / "decisions.csv"),
            "--logs",
            str(d / "logs.parquet"),
            "--target-probs",
            str(d / "target.npy"),
            "--covariate",
            "target_group",
        ],
    )
    assert res.exit_code == 0, res.output
    return {"full": d / "full.html", "sim": d / "sim.html"}


@pytest.fixture(scope="module")
def browser() -> HeadlessChromium:
    with HeadlessChromium(SCREEN_WIDTH) as b:
        yield b


def _layout(browser: HeadlessChromium, path: Path, width: int, media: str) -> dict:
    browser.width = width
    browser.open(path, media=media)
    return browser.evaluate(OVERFLOW_JS)


def _assert_fits(facts: dict, width: int) -> None:
    assert facts["innerWidth"] == width
    assert facts["scrollWidth"] <= width
    assert facts["scrollWidth"] <= facts["clientWidth"], facts
    assert facts["wide"] == []
    assert facts["scrolling"] == []
    assert facts["images"] and all(i["loaded"] for i in facts["images"])
    assert all(0 < i["width"] <= facts["clientWidth"] for i in facts["images"])


@pytest.mark.parametrize("page", ["full", "sim"])
def test_report_fits_a_1280_px_window_and_an_a4_page(
    browser: HeadlessChromium, pages: dict[str, Path], page: str, tmp_path: Path
) -> None:
    _assert_fits(_layout(browser, pages[page], SCREEN_WIDTH, "screen"), SCREEN_WIDTH)
    browser.screenshot(tmp_path / f"{page}_{SCREEN_WIDTH}.png")
    assert (tmp_path / f"{page}_{SCREEN_WIDTH}.png").stat().st_size > 10_000
    _assert_fits(_layout(browser, pages[page], A4_TEXT_WIDTH, "print"), A4_TEXT_WIDTH)


def test_the_overflow_check_sees_a_page_that_is_too_wide(
    browser: HeadlessChromium, tmp_path: Path
) -> None:
    page = tmp_path / "wide.html"
    page.write_text(
        "<!doctype html><body><div style='overflow-x:auto'>"
        "<table><tr><td style='white-space:nowrap'>" + "x " * 400 + "</td></tr></table></div>"
        "<p style='width:1500px'>too wide</p></body>"
    )
    facts = _layout(browser, page, SCREEN_WIDTH, "screen")
    assert facts["scrollWidth"] > SCREEN_WIDTH
    assert any(w.startswith("p.") for w in facts["wide"])
    assert any(s.startswith("div.") for s in facts["scrolling"])


def _text(page: str) -> str:
    """Visible text, one space between elements (``<wbr>`` joins)."""
    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.DOTALL).replace("<wbr>", "")
    words = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(words).replace("\u00a0", " "))


def test_the_answer_comes_first_with_numbers_for_people(pages: dict[str, Path]) -> None:
    page = pages["full"].read_text(encoding="utf-8")
    text = _text(page)
    summary = text[text.index("Summary") : text.index("The trial: recommender")]
    for heading in (
        "Effect of the recommender (intention to treat)",
        "Effect on compliers (2SLS)",
        "Power and information",
        "Best candidate policy (off-policy)",
        "Fairness (do-no-harm audit)",
    ):
        assert heading in summary
    assert re.search(
        r"[+\u2212]\d+\.\d pp 95 % CI [+\u2212]\d+\.\d to [+\u2212]\d+\.\d pp · p [=<] 0\.\d+",
        summary,
    )
    assert "cluster-robust CR2" in summary
    assert re.search(r"MDE \d+\.\d pp", summary)
    known = re.search(r"([\d,]+) of 2,400 outcomes known \((\d+) %\)", summary)
    assert known is not None and 0 < int(known.group(2)) < 100  # follow-up not finished
    assert re.search(r"Effective sample size [\d,]+ of 3,000 rounds", summary)
    # no raw Python dicts, no scientific notation, no long float tails
    assert "{'" not in page and "': " not in text
    assert not re.search(r"\d\.?\d*e[+-]\d", text)
    assert not re.search(r"\d\.\d{5,}", text)
    assert re.search(r"p (=|<) 0\.\d{2,3}", text)
    for section in ("Cluster randomisation", "Time to a job (Kaplan-Meier)", "Log-rank test"):
        assert section in text
    assert "What the recommender suggests to whom" in text  # the heatmap
    assert page.count("data:image/png;base64,") == 4  # KM, OPE forest, group effects, heatmap
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_a_continuous_outcome_has_thousands_separators_and_no_percent_points() -> None:
    trial = _trial(n=1200)
    result = analyse(trial, ExperimentSpec(outcome_col="benefit_dkk"))
    text = _text(render_html(experiment=result))
    effect = re.search(r"intention to treat\) ([+\u2212][\d,]+(\.\d+)?) 95 % CI", text)
    assert effect is not None and "," in effect.group(1)  # e.g. -3,620
    assert "pp" not in text[: text.index("The trial")]
    assert "· p < 0.001" in text  # escaped in the HTML, shown as text
    assert not re.search(r"\d\.?\d*e[+-]\d", text)


def test_an_unclustered_trial_has_no_cluster_section(pages: dict[str, Path]) -> None:
    text = _text(pages["sim"].read_text(encoding="utf-8"))
    assert "Cluster randomisation" not in text
    assert "Time to a job (Kaplan-Meier)" in text  # the simulator's decisions.csv has weeks_to_job
    assert "Log-rank test of equal curves: χ² = " in text
