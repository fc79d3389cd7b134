"""``nbi simulate run | calibrate | logs``: the simulator's command line.

Heavy imports happen inside the commands so ``nbi --help`` stays fast. Bad input exits with
status 2 and one line on stderr; ``--json`` prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

T = TypeVar("T")
EXIT_BAD_INPUT = 2
EXIT_OUT_OF_TOLERANCE = 1
DELAYS = ("hazard", "horizon", "at_once")
MAX_WEEKS = 520


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def _guard(func: Callable[[], T]) -> T:
    """Run ``func``; turn domain errors (bad input) and files that cannot be written into one
    clear line and exit 2."""
    from bandit.errors import BanditError
    from offline_eval.cli import error_line

    try:
        return func()
    except (BanditError, ValueError, OSError) as exc:
        _fail(error_line(exc))
        raise  # unreachable: _fail raises


def _emit_json(document: dict[str, Any]) -> None:
    from bandit.jsonsafe import dumps

    sys.stdout.write(dumps(document, sort_keys=True, default=str) + "\n")


def _config(**params: Any) -> Any:
    from simulator.config import SimulationConfig

    return _guard(lambda: SimulationConfig(**params))


def _print_run(doc: dict[str, Any]) -> None:
    rows = [("arm", "n", "employed@H", "true", "benefit wk", "benefit MDKK", "regret")]
    for arm in ("treatment", "control", "all"):
        t = doc["totals"].get(arm)
        if t is None:
            continue
        rows.append(
            (
                arm,
                str(t["n"]),
                f"{t['employment_rate']:.4f}",
                f"{t['true_employment']:.4f}",
                f"{t['mean_benefit_weeks']:.2f}",
                f"{t['benefit_dkk'] / 1e6:.2f}",
                "-" if math.isnan(t["regret_mean"]) else f"{t['regret_mean']:.4f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    quarters = doc.get("quarterly_values") or []
    if quarters:
        typer.echo("TRUE value of the suggestions per quarter (if every citizen followed):")
        names = ("policy", "practice", "uniform", "best_noncontextual", "observable_oracle")
        head = ("quarter", *names, "oracle", "share_of_gain")
        typer.echo("  ".join(h.rjust(12) for h in head))
        for q in quarters:
            cells = [str(int(q["quarter"]) + 1)]
            cells += [f"{q[n]:.4f}" for n in (*names, "oracle")]
            share = q["share_of_gain"]
            cells.append("-" if share != share else f"{share:.2f}")  # NaN check
            typer.echo("  ".join(c.rjust(12) for c in cells))
    shadow = doc.get("shadow")
    if shadow:  # the service ran in shadow mode (README: off-policy evaluation from shadow logs)
        typer.echo(
            f"Shadow decisions (nothing suggested, practice as usual): {shadow['decisions']}; "
            f"TRUE value of a uniform pmf on them {shadow['true_value_uniform']:.4f} "
            f"(practice {shadow['practice_value']:.4f}); all their outcomes are posted"
        )
    _print_trial(doc["rct"])


def _print_trial(rct: dict[str, Any]) -> None:
    """The trial in information time: only outcomes known at the end of the run count."""
    pending = int(rct["pending_treatment"] + rct["pending_control"])
    known = int(rct["n_treatment"] + rct["n_control"])
    typer.echo(
        f"Trial at the end of the run (information time: decided by week "
        f"{int(rct['cutoff_week'])} = end - {int(rct['horizon_weeks'])} weeks horizon - "
        f"{int(rct['lag_weeks'])} weeks register lag): {known} outcomes known, "
        f"{pending} pending"
    )
    if "difference" not in rct:
        typer.echo("ITT treatment-control: not estimable yet (no known outcome in an arm)")
        return
    typer.echo(
        f"ITT treatment-control: {rct['difference'] * 100:+.2f} pp "
        f"(95% CI {rct['ci_low'] * 100:+.2f} to {rct['ci_high'] * 100:+.2f}, "
        f"p={rct['p_value']:.3f}); MDE {rct['mde'] * 100:.2f} pp"
    )
    typer.echo(
        f"TRUE ITT per person (received vs practice as usual, analysed treatment citizens): "
        f"{rct['true_itt'] * 100:+.2f} pp; all treatment decisions "
        f"{rct['true_itt_all'] * 100:+.2f} pp; difference of the arms' true means "
        f"{rct['true_arm_difference'] * 100:+.2f} pp"
    )


def _run(
    policy: str,
    weeks: int,
    seed: int,
    scale: float,
    compliance: float,
    control_share: float,
    lag: int,
    delay: str,
    capacity_scale: float,
    offers_per_family: int,
    out: Path | None,
    as_json: bool,
    progress: bool,
    url: str | None = None,
    api_key: str | None = None,
    equity_reserve: float = 0.25,
) -> None:
    from simulator.policies import CLI_POLICIES, build_policy

    if policy not in CLI_POLICIES:
        _fail(f"unknown policy {policy!r}; choose one of {', '.join(CLI_POLICIES)}")
    if not 1 <= weeks <= MAX_WEEKS:
        _fail(f"--weeks must be in 1..{MAX_WEEKS}, got {weeks}")
    config = _config(
        scale=scale,
        compliance=compliance,
        control_share=control_share,
        lag_weeks=lag,
        capacity_scale=capacity_scale,
        offers_per_family=offers_per_family,
        equity_reserve_share=equity_reserve,
    )
    if delay not in DELAYS:
        _fail(f"unknown --delay {delay!r}; choose one of {', '.join(DELAYS)}")
    learner = _guard(lambda: build_policy(policy, seed=seed, delay=delay))
    if out is not None:  # before the run: an unwritable --out fails at once
        _guard(lambda: _make_out_dir(out))
    from tqdm import tqdm

    from simulator.replay import Replay
    from simulator.report import summary

    replay = (
        Replay(learner, config, weeks=weeks, seed=seed, delay=delay)
        if url is None
        else _http_replay(url, api_key, config, weeks, seed)
    )
    with tqdm(total=weeks, file=sys.stderr, disable=not progress, unit="week") as bar:

        def tick(_week: int) -> None:
            bar.update(1)

        result = _guard(lambda: _run_replay(replay, tick))
    if result.decisions.empty:
        _fail(
            f"the run made no decisions ({weeks} weeks at scale {config.scale:g}); "
            "raise --scale or --weeks"
        )
    doc = summary(result, lag_weeks=lag)
    if out is not None:
        doc["files"] = _guard(lambda: _write_run(result, doc, out))
    if as_json:
        _emit_json(doc)
    else:
        _print_run(doc)


def _make_out_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"--out {out}: cannot create the directory ({exc.strerror or type(exc).__name__})"
        raise ValueError(msg) from None


def _write_run(result: Any, doc: dict[str, Any], out: Path) -> list[str]:
    """The run's tables, summary and plots in ``out``; the paths of the plots."""
    from bandit.jsonsafe import dumps
    from simulator.plots import write_plots
    from simulator.report import by_group, weekly_table

    weekly = weekly_table(result)
    weekly.to_csv(out / "weekly.csv", index=False)
    by_group(result).to_csv(out / "by_group.csv", index=False)
    result.decisions.to_csv(out / "decisions.csv", index=False)
    (out / "summary.json").write_text(dumps(doc, indent=2, sort_keys=True, default=str))
    return [str(p) for p in write_plots(weekly, doc, out)]


def _http_replay(url: str, api_key: str | None, config: Any, weeks: int, seed: int) -> Any:
    import httpx

    from simulator.http_driver import HttpReplay

    if not url.startswith(("http://", "https://")):
        _fail(f"--url must start with http:// or https://, got {url!r}")
    headers = {} if api_key is None else {"X-API-Key": api_key}
    client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30.0)
    return HttpReplay(client, config, weeks=weeks, seed=seed)


def _run_replay(replay: Any, tick: Callable[[int], None]) -> Any:
    """Run; a failing or unreachable service becomes one clear line (exit 2)."""
    import httpx

    try:
        return replay.run(progress=tick)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the decision service: {type(exc).__name__}: {exc}")
        raise  # unreachable


def _calibrate(n: int, seed: int, business_cycle: float, as_json: bool) -> None:
    from simulator.calibration import calibration_moments

    if n < 100:  # noqa: PLR2004
        _fail(f"--n must be at least 100, got {n}")
    if not 0 < business_cycle <= 5:  # noqa: PLR2004
        _fail(f"--business-cycle must be in (0, 5], got {business_cycle}")
    config = _config(business_cycle=business_cycle)
    moments = calibration_moments(config, n_per_group=n, seed=seed)
    ok = all(m.ok for m in moments)
    if as_json:
        _emit_json(
            {
                "ok": ok,
                "moments": [
                    {
                        "group": m.group,
                        "name": m.name,
                        "target": m.target,
                        "tolerance": m.tolerance,
                        "exact": m.exact,
                        "simulated": m.simulated,
                        "ok": m.ok,
                    }
                    for m in moments
                ],
            }
        )
    else:
        typer.echo(f"{'group':14} {'moment':28} {'target':>8} {'tol':>6} {'exact':>8} {'sim':>8}")
        for m in moments:
            sim = "-" if m.simulated is None else f"{m.simulated:.3f}"
            flag = "ok" if m.ok else "OUT"
            typer.echo(
                f"{m.group:14} {m.name:28} {m.target:8.3f} {m.tolerance:6.3f} "
                f"{m.exact:8.3f} {sim:>8} {flag}"
            )
    if not ok:
        typer.echo("calibration out of tolerance", err=True)
        raise typer.Exit(EXIT_OUT_OF_TOLERANCE)


def _logs(
    n_rounds: int,
    logging: str,
    floor: float,
    seed: int,
    out: Path,
    as_json: bool,
    offers_per_family: int = 1,
    row_group_rows: int = 65_536,
) -> None:
    from simulator.logs import LOGGING_POLICIES

    if logging not in LOGGING_POLICIES:
        _fail(f"unknown logging policy {logging!r}; choose one of {', '.join(LOGGING_POLICIES)}")
    if out.is_dir():
        _fail(f"--out {out} is a directory; give a file name ending in .parquet or .csv")
    if out.suffix.lower() not in (".parquet", ".pq", ".csv"):
        _fail(f"--out must end in .parquet or .csv, got {out.name!r}")
    _guard(lambda: _check_logs_out(out))
    config = _config(scale=0.25, offers_per_family=offers_per_family, capacity_scale=0.0)
    doc = _guard(lambda: _write_logs(n_rounds, logging, floor, seed, out, config, row_group_rows))
    if as_json:
        _emit_json(doc)
    else:
        for key, value in doc.items():
            if key not in ("naive_vs_true", "actions", "families"):
                typer.echo(f"{key}: {value}")
        typer.echo(f"actions: {len(doc['actions'])} ({len(set(doc['families']))} families)")
        typer.echo("naive participant-vs-standard-contact difference vs TRUE effect (ATT):")
        for row in doc["naive_vs_true"]:
            flag = "  WRONG SIGN" if row["wrong_sign"] else ""
            typer.echo(
                f"  {row['family']:22} n={row['n']:6d} naive={row['naive']:+.3f} "
                f"(se {row['naive_se']:.3f}) true={row['true_att']:+.3f}{flag}"
            )


SIBLING_SUFFIXES = (".parquet", ".pq", ".csv")


def _check_logs_out(out: Path) -> None:
    """Refuse an ``--out`` whose directory cannot be written, or whose ground truth
    (``<stem>.truth.npz`` and ``<stem>.meta.json``: named after the stem, as every reader
    expects) would replace the one of another log with the same stem (``X.csv`` beside
    ``X.parquet``)."""
    from offline_eval.cli import check_output

    check_output(out, "--out")
    stem = out.with_suffix("")
    truth = [p for p in (Path(f"{stem}.truth.npz"), Path(f"{stem}.meta.json")) if p.exists()]
    others = [
        p for suffix in SIBLING_SUFFIXES if (p := out.with_suffix(suffix)) != out and p.exists()
    ]
    if truth and others:
        msg = (
            f"--out {out}: {truth[0].name} belongs to {others[0].name} (the ground truth is "
            "named after the file's stem); choose another name or remove that log first"
        )
        raise ValueError(msg)


def _write_logs(
    n_rounds: int,
    logging: str,
    floor: float,
    seed: int,
    out: Path,
    config: Any,
    row_group_rows: int,
) -> dict[str, Any]:
    """Write the log (Parquet: streamed in row groups, bounded memory; CSV: in memory) and
    summarise it from running sums."""
    import numpy as np

    from simulator.logs import LogBlock, generate_logs, write_logs_streamed
    from simulator.validation import NaiveAccumulator

    sums = {"logging": 0.0, "oracle": 0.0, "reward": 0.0}
    naive: list[NaiveAccumulator] = []

    def observe(block: LogBlock) -> None:
        frame = block.frame
        pmf = frame[[f"pmf_{j}" for j in range(block.truth.shape[1])]].to_numpy(dtype=float)
        reward = frame["reward"].to_numpy(dtype=float)
        sums["logging"] += float((pmf * block.truth).sum())
        sums["oracle"] += float(np.where(block.eligible, block.truth, -np.inf).max(axis=1).sum())
        sums["reward"] += float(reward.sum())
        if not naive:
            naive.append(NaiveAccumulator(block.truth.shape[1]))
        naive[0].add(frame["action"].to_numpy(), reward, block.truth)

    if out.suffix.lower() == ".csv":
        logs = generate_logs(
            n_rounds, logging_policy=logging, floor=floor, seed=seed, config=config
        )
        path = logs.write(out)
        observe(LogBlock(logs.frame, logs.expected_reward_matrix, logs.eligible))
        ids, families, policy = logs.action_ids, logs.action_families, logs.logging_policy
    else:
        streamed = write_logs_streamed(
            out,
            n_rounds,
            logging_policy=logging,
            floor=floor,
            seed=seed,
            config=config,
            row_group_rows=row_group_rows,
            observers=[observe],
        )
        path, ids, families = streamed.path, streamed.action_ids, streamed.action_families
        policy = streamed.logging_policy
    return {
        "path": str(path),
        "n_rounds": n_rounds,
        "actions": list(ids),
        "families": list(families),
        "logging_policy": policy,
        "true_value_logging": sums["logging"] / n_rounds,
        "true_value_oracle": sums["oracle"] / n_rounds,
        "mean_reward": sums["reward"] / n_rounds,
        "naive_vs_true": [
            {
                "family": c.family,
                "n": c.n,
                "naive": c.naive,
                "naive_se": c.naive_se,
                "true_att": c.true_att,
                "wrong_sign": c.wrong_sign,
            }
            for c in naive[0].result(families)
        ],
    }


def register(app: typer.Typer) -> None:
    """Add ``nbi simulate`` (``run``, ``calibrate``, ``logs``) to the root app."""
    simulate = typer.Typer(
        help="Synthetic labour market: online replay, calibration, historical logs.",
        no_args_is_help=True,
    )

    @simulate.command("run")
    def run_cmd(
        policy: str = typer.Option("vw", help="uniform, practice, vw, river, oracle or none."),
        weeks: int = typer.Option(52, help=f"Simulated weeks, 1..{MAX_WEEKS}."),
        seed: int = typer.Option(0, min=0, help="Seed, >= 0 (same seed, identical tables)."),
        scale: float = typer.Option(1.0, help="Inflow scale (1.0 = Copenhagen, 41,000/yr)."),
        compliance: float = typer.Option(0.6, help="P(caseworker follows the recommendation)."),
        control_share: float = typer.Option(0.2, help="Control-arm share."),
        lag: int = typer.Option(
            0,
            help="Register lag in weeks: outcomes reach the learner H + lag weeks after the "
            "decision at the latest, and the trial summary counts only decisions at least "
            "H + lag weeks old at the end of the run.",
        ),
        delay: str = typer.Option(
            "hazard",
            help="How delayed outcomes reach the learner: hazard (citizen-weeks as they pass), "
            "horizon (every outcome at the horizon) or at_once (jobs at once; biased).",
        ),
        capacity_scale: float = typer.Option(
            1.0, help="Weekly seat caps shared by both arms (0 = off, 1 = catalog capacity)."
        ),
        offers_per_family: int = typer.Option(
            0, help="Offers per family in the action set (0 = the full catalog; 1 = 11 arms)."
        ),
        equity_reserve: float = typer.Option(
            0.25,
            help="Share of each scarce family's weekly seats held for the highest-need "
            "citizens, as NBI_EQUITY_RESERVE_SHARE (0 = off). With --url the service's own "
            "setting applies, and only with its capacity tracking on.",
        ),
        out: Annotated[
            Path | None, typer.Option(help="Directory for tables, PNG plots and report.html.")
        ] = None,
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
        progress: bool = typer.Option(True, help="Progress bar on stderr."),
        url: Annotated[
            str | None,
            typer.Option(
                help="Drive a running service (e.g. http://127.0.0.1:8000) instead; start it "
                "with NBI_SIMULATED_TIME=true (simulated weeks pass in seconds).",
            ),
        ] = None,
        api_key: Annotated[
            str | None, typer.Option(envvar="NBI_API_KEY", help="API key of the case role.")
        ] = None,
    ) -> None:
        """Replay the recommender week by week with delayed outcomes and an RCT control arm.

        With --url the service decides (group, recommendation) and learns; --policy is then
        only a label and the service's own policy is used.
        """
        _run(
            policy,
            weeks,
            seed,
            scale,
            compliance,
            control_share,
            lag,
            delay,
            capacity_scale,
            offers_per_family,
            out,
            as_json,
            progress,
            url,
            api_key,
            equity_reserve,
        )

    @simulate.command("calibrate")
    def calibrate_cmd(
        n: int = typer.Option(20_000, help="Citizens per target group (at least 100)."),
        seed: int = typer.Option(0, min=0, help="Seed (>= 0)."),
        business_cycle: float = typer.Option(
            1.0,
            help="Global hazard multiplier of the scenario, in (0, 5] (targets are for 1.0).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Simulated moments vs targets (domain.md 5.1); exit 1 if out of tolerance."""
        _calibrate(n, seed, business_cycle, as_json)

    @simulate.command("logs")
    def logs_cmd(
        out: Annotated[
            Path,
            typer.Option(
                help="Output file (.parquet or .csv); the ground truth goes beside it as "
                "<stem>.truth.npz and <stem>.meta.json, so X.csv and X.parquet cannot share a "
                "directory."
            ),
        ],
        n_rounds: int = typer.Option(10_000, help="Number of logged decisions."),
        logging: str = typer.Option("practice", help="Logging policy: practice or uniform."),
        floor: float = typer.Option(0.05, help="Propensity floor of the logger."),
        seed: int = typer.Option(0, min=0, help="Seed (>= 0)."),
        offers_per_family: int = typer.Option(
            1, help="Offers per family in the action set (1 = 11 arms; 0 = the full catalog)."
        ),
        row_group_rows: int = typer.Option(
            65_536, help="Rows per Parquet row group (the log is written one group at a time)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Historical logs with known propensities plus the ground truth (<stem>.truth.npz).

        Parquet logs are simulated and written in row groups, in memory bounded by one week of
        rounds and one row group, so logs of millions of rounds fit; CSV logs are built in memory.
        """
        _logs(n_rounds, logging, floor, seed, out, as_json, offers_per_family, row_group_rows)

    app.add_typer(simulate, name="simulate")
