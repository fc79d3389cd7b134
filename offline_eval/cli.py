"""``nbi evaluate``, ``nbi fairness`` and ``nbi report`` (``nbi experiment``: :mod:`offline_eval.cli_experiment`).

Tables go to the terminal; ``--json`` prints exactly one JSON document on stdout. Bad input
exits non-zero with one clear ``error: ...`` line on stderr (no traceback). Heavy modules are
imported inside the commands so ``nbi --help`` stays fast.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

EXIT_BAD_INPUT = 2
MIN_BOOT = 100
"""Fewest bootstrap resamples ``nbi evaluate --n-boot`` accepts: with fewer, the percentile
interval is noise (with 1 it need not even contain the estimate)."""


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def emit_json(doc: Any) -> None:
    """Print one JSON document on stdout (NaN/inf as null)."""
    typer.echo(json.dumps(_finite(doc), default=_json_default, allow_nan=False))


def error_line(exc: BaseException) -> str:
    """The first line of an error for ``error: ...``; a file error names its reason and path.

    Examples
    --------
    >>> error_line(FileNotFoundError(2, "No such file or directory", "/proc/nope/x.png"))
    'No such file or directory: /proc/nope/x.png'
    >>> error_line(ValueError("bad\\nsecond line"))
    'bad'
    """
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_output(
    path: Path,
    option: str,
    *,
    suffixes: tuple[str, ...] = (),
    inputs: Iterable[Path | None] = (),
) -> None:
    """Refuse (:class:`ValueError` naming ``option``) an output file that cannot be written
    or would replace an input: a wrong suffix, a directory, a missing or read-only parent
    directory, or the same file as one of ``inputs`` (also through a link).

    Examples
    --------
    >>> check_output(Path("r.csv"), "--out", suffixes=(".html", ".htm"))
    Traceback (most recent call last):
    ...
    ValueError: --out must end in .html or .htm, got 'r.csv'
    >>> check_output(Path("/proc/nope/x.png"), "--plot")
    Traceback (most recent call last):
    ...
    ValueError: --plot /proc/nope/x.png: the directory /proc/nope does not exist
    """
    if suffixes and path.suffix.lower() not in suffixes:
        msg = f"{option} must end in {' or '.join(suffixes)}, got {path.name!r}"
        raise ValueError(msg)
    if path.is_dir():
        msg = f"{option} {path} is a directory; give a file name"
        raise ValueError(msg)
    parent = path.absolute().parent
    if not parent.is_dir():
        msg = f"{option} {path}: the directory {parent} does not exist"
        raise ValueError(msg)
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        msg = f"{option} {path}: permission denied"
        raise ValueError(msg)
    for source in inputs:
        if source is not None and _same_file(path, source):
            msg = f"{option} {path} is one of the input files; write the output elsewhere"
            raise ValueError(msg)


def _same_file(a: Path, b: Path) -> bool:
    if a.absolute().resolve() == b.absolute().resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


@contextmanager
def bad_input_exits() -> Iterator[None]:
    """Turn bad input (ValueError, missing files) into one line on stderr and exit code 2."""
    try:
        yield
    except (ValueError, OSError, KeyError) as exc:
        typer.echo(f"error: {error_line(exc)}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _parse_params(raw: str | None) -> dict[str, dict[str, Any]]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        msg = f"--policy-params is not valid JSON: {exc.msg}"
        raise ValueError(msg) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        msg = '--policy-params must map policy names to parameter objects, e.g. {"vw": {"seed": 1}}'
        raise ValueError(msg)
    return data


def _run_evaluate(
    log_file: Path,
    policies: list[str],
    target_probs: Path | None,
    train_fraction: float,
    estimators: str | None,
    ci: str,
    n_boot: int,
    seed: int,
    policy_params: str | None,
    resampling: str = "binned",
) -> list[Any]:
    from offline_eval.ci import CIConfig
    from offline_eval.evaluation import build_estimators, evaluate_named, evaluate_target
    from offline_eval.logs import read_frame, read_logs
    from offline_eval.targets import load_target_probs

    if not policies and target_probs is None:
        msg = "give --policy NAME (repeatable) and/or --target-probs FILE.npy"
        raise ValueError(msg)
    config = CIConfig(method=ci, n_boot=n_boot, seed=seed, resampling=resampling)  # type: ignore[arg-type]
    names = [e.strip() for e in estimators.split(",")] if estimators else None
    params = _parse_params(policy_params)
    _check_policy_params(params, policies)
    if log_file.suffix.lower() in (".parquet", ".pq"):  # streamed: memory bounded by a chunk
        from offline_eval.streaming import evaluate_file

        return evaluate_file(
            log_file,
            policies=policies,
            target_probs=target_probs,
            train_fraction=train_fraction,
            estimator_names=names,
            ci=config,
            params=params,
        )
    logs = read_logs(log_file)
    truth = _load_truth(log_file, logs.n_rounds)
    out = []
    if target_probs is not None:
        _check_target_shape(target_probs, logs.n_rounds, logs.n_actions)
        probs = load_target_probs(target_probs, logs)
        ests = build_estimators(names, logs)
        out.append(
            evaluate_target(logs, probs, target_probs.name, estimators=ests, ci=config, truth=truth)
        )
    if policies:
        if logs.n_rounds < 2:  # noqa: PLR2004
            msg = (
                f"{log_file.name} has {logs.n_rounds} round; --policy needs at least 2 (it "
                "trains on the first --train-fraction and evaluates on the rest)"
            )
            raise ValueError(msg)
        frame = read_frame(log_file)
        raw_ctx = frame[[c for c in frame.columns if c in _raw_context_columns(frame)]]
        out.extend(
            evaluate_named(
                logs,
                raw_ctx,
                policies,
                train_fraction=train_fraction,
                params=params,
                estimator_names=names,
                ci=config,
                truth=truth,
            )
        )
    return out


def _check_policy_params(params: dict[str, dict[str, Any]], policies: list[str]) -> None:
    """Refuse parameters for a policy that is not evaluated or that it does not take (they
    used to reach the policy's constructor as a TypeError traceback)."""
    import inspect

    from bandit.policies import POLICY_REGISTRY, policy_class

    for name, kwargs in params.items():
        if name not in policies:
            given = ", ".join(policies) or "none"
            msg = f"--policy-params names {name!r}, which is not a --policy (given: {given})"
            raise ValueError(msg)
        if name not in POLICY_REGISTRY:
            if kwargs:
                msg = f"--policy-params: {name!r} takes no parameters"
                raise ValueError(msg)
            continue
        accepted = [
            p.name
            for p in inspect.signature(policy_class(name)).parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            msg = (
                f"--policy-params: {name} has no parameter {', '.join(map(repr, unknown))} "
                f"(it takes {', '.join(accepted)})"
            )
            raise ValueError(msg)


def _check_target_shape(path: Path, n_rounds: int, n_actions: int) -> None:
    """Refuse a ``--target-probs`` array whose shape is not (rounds, actions) of the log,
    naming both shapes (a wrong column count used to read as "rows must sum to 1")."""
    import numpy as np

    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
    except (OSError, ValueError):
        return  # not a plain .npy array: load_target_probs says what is wrong
    if len(shape) == 2 and shape != (n_rounds, n_actions):  # noqa: PLR2004
        msg = (
            f"--target-probs {path.name} has shape {shape}, but the log needs "
            f"({n_rounds}, {n_actions}): one row per round, one column per action"
        )
        raise ValueError(msg)


def _load_truth(log_file: Path, n_rounds: int) -> Any:
    """The simulator's ground truth next to the log (``<stem>.truth.npz``), if present."""
    import numpy as np

    path = log_file.with_name(log_file.stem + ".truth.npz")
    if not path.is_file():
        return None
    with np.load(path) as data:
        if "expected_reward_matrix" not in data.files:
            return None
        matrix = np.asarray(data["expected_reward_matrix"], dtype=float)
    if matrix.shape[0] != n_rounds:
        msg = f"{path.name} has {matrix.shape[0]} rounds but the log has {n_rounds}"
        raise ValueError(msg)
    return matrix


def _raw_context_columns(frame: Any) -> list[str]:
    from offline_eval.logs import AUDIT_PREFIX, PMF_PREFIX, RESERVED_COLUMNS

    return [
        str(c)
        for c in frame.columns
        if c not in RESERVED_COLUMNS
        and not str(c).startswith(PMF_PREFIX)
        and not str(c).startswith(AUDIT_PREFIX)
    ]


def _print_table(frame: Any) -> None:
    typer.echo(frame.to_string(index=False, float_format=lambda x: f"{x:.4f}"))


def register(app: typer.Typer) -> None:
    """Add the offline-evaluation commands to the root app."""
    from offline_eval.cli_experiment import register_experiment

    _register_evaluate(app)
    register_experiment(app)
    _register_fairness(app)
    _register_report(app)


_LOG_ARG = typer.Argument(..., help="Logged-bandit file (.parquet or .csv).")


def _register_evaluate(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        log_file: Path = _LOG_ARG,
        policy: list[str] = typer.Option(  # noqa: B008
            [], "--policy", help="Target policy: vw, river, uniform, practice, always:<family>."
        ),
        target_probs: Path | None = typer.Option(  # noqa: B008
            None, "--target-probs", help=".npy array (n_rounds, K) of target probabilities."
        ),
        train_fraction: float = typer.Option(
            0.5, help="Share of rounds (in time order) to train on."
        ),
        estimators: str | None = typer.Option(
            None,
            help="Comma-separated estimator names from ips, snips, dm, dr, sndr, switch_dr, "
            "replay (default: all of them; replay only when the logger was uniform).",
        ),
        ci: str = typer.Option(
            "robust",
            help="Interval method: robust (default; variance floor from the known logger and "
            "Student t with effective df, for low-ESS targets), analytic (textbook normal) or "
            "bootstrap.",
        ),
        n_boot: int = typer.Option(
            10_000, min=MIN_BOOT, help=f"Bootstrap resamples (>= {MIN_BOOT}; --ci bootstrap)."
        ),
        bootstrap: str = typer.Option(
            "binned",
            help="With --ci bootstrap: binned (multinomial on at most 2,048 atoms, reports its "
            "binning_loss) or exact (Poisson(1) weights on every round, no binning).",
        ),
        seed: int = typer.Option(0, min=0, help="Seed of the bootstrap (>= 0)."),
        policy_params: str | None = typer.Option(
            None,
            help='JSON parameters per --policy, e.g. {"vw": {"exploration": "epsilon"}}; '
            "each must be a parameter of that policy.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Estimate the value of target policies on a log (IPS, SNIPS, DM, DR, SNDR, Switch-DR)."""
        with bad_input_exits():
            from offline_eval.evaluation import estimates_table

            evaluations = _run_evaluate(
                log_file,
                policy,
                target_probs,
                train_fraction,
                estimators,
                ci,
                n_boot,
                seed,
                policy_params,
                resampling=bootstrap,
            )
            if as_json:
                emit_json({"evaluations": [e.to_dict() for e in evaluations]})
                return
            _print_table(estimates_table(evaluations))


def _register_fairness(app: typer.Typer) -> None:
    @app.command()
    def fairness(
        audit_file: Path = typer.Argument(  # noqa: B008
            ..., help="One row per citizen with group, outcome, protected attributes."
        ),
        attribute: list[str] = typer.Option(  # noqa: B008
            ["gender", "origin", "age_band"],
            "--attribute",
            help="Protected attribute column (repeatable).",
        ),
        group_col: str = typer.Option("group", help="Column with the RCT arm."),
        outcome_col: str = typer.Option(
            "employed",
            help="Column with the 0/1 outcome (employed within the horizon); other values are "
            "refused.",
        ),
        margin: float = typer.Option(
            0.0,
            help="Do-no-harm margin in [0, 1), a share of the outcome (0.02 = 2 pp): flag a "
            "group whose effect is significantly below -margin; 0 flags any significant harm.",
        ),
        alpha: float = typer.Option(
            0.05, help="Family-wise error rate of the harm flags (Holm), in (0, 1)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    ) -> None:
        """Fairness audit by protected group with a one-sided do-no-harm test (Holm)."""
        from offline_eval.fairness import check_alpha_margin

        with bad_input_exits():
            check_alpha_margin(alpha, margin, alpha_name="--alpha", margin_name="--margin")
            report = _load_fairness(audit_file, attribute, group_col, outcome_col, margin, alpha)
            if as_json:
                emit_json(report.to_dict())
                return
            _print_table(report.groups)
            if not report.recommendation_rates.empty:
                typer.echo("")
                _print_table(report.recommendation_rates)
            n_groups, n_tested = len(report.groups), report.n_tested
            if n_tested == 0:
                typer.echo(
                    f"\nno harm verdict: none of the {n_groups} groups could be tested (each "
                    "needs 2+ citizens in both arms and some variation in the outcome)"
                )
                return
            typer.echo(
                f"\nflagged (harm, Holm-adjusted p < {alpha:g}, {n_tested} of {n_groups} groups "
                f"tested): {', '.join(report.flagged) or 'none'}"
            )
            if report.untested:
                typer.echo(
                    "not tested (fewer than 2 citizens in an arm, or no variation in the "
                    f"outcome): {', '.join(report.untested)}"
                )


def _load_fairness(
    path: Path, attributes: list[str], group_col: str, outcome_col: str, margin: float, alpha: float
) -> Any:
    from offline_eval.fairness import AuditColumns, audit
    from offline_eval.logs import read_frame

    frame = read_frame(path)
    renamed = {f"protected_{a}": a for a in attributes if a not in frame.columns}
    frame = frame.rename(columns={k: v for k, v in renamed.items() if k in frame.columns})
    cols = AuditColumns(group=group_col, outcome=outcome_col)
    return audit(frame, attributes=attributes, columns=cols, alpha=alpha, margin=margin)


def _register_report(app: typer.Typer) -> None:
    from offline_eval.cli_experiment import _COLUMN_HELP as COLS

    @app.command()
    def report(  # noqa: PLR0913 (the trial file's columns, as in nbi experiment)
        out: Path = typer.Option(  # noqa: B008
            Path("report.html"),
            "--out",
            help="HTML file to write (.html or .htm; never one of the input files).",
        ),
        logs: Path | None = typer.Option(None, "--logs", help="Logged-bandit file to evaluate."),  # noqa: B008
        policy: list[str] = typer.Option([], "--policy", help="Target policy (repeatable)."),  # noqa: B008
        target_probs: Path | None = typer.Option(  # noqa: B008
            None, "--target-probs", help=".npy target probabilities."
        ),
        rct: Path | None = typer.Option(None, "--rct", help="RCT file (one row per citizen)."),  # noqa: B008
        audit_file: Path | None = typer.Option(  # noqa: B008
            None, "--fairness", help="Audit file (default: the RCT file)."
        ),
        group_col: str = typer.Option("group", help=COLS["group"]),
        outcome_col: str = typer.Option("employed", help=COLS["outcome"]),
        control_share: float = typer.Option(0.2, help="Configured control share."),
        covariate: list[str] = typer.Option(  # noqa: B008
            [], "--covariate", help="Pre-treatment covariate for Lin adjustment (repeatable)."
        ),
        hc: str = typer.Option(
            "HC2", "--hc", help="Robust variance of the Lin estimate: HC2 or HC3."
        ),
        received_col: str | None = typer.Option(None, help=COLS["received"]),
        time_col: str | None = typer.Option(None, help=COLS["time"]),
        event_col: str | None = typer.Option(None, help=COLS["event"]),
        follow_up_col: str | None = typer.Option(None, help=COLS["follow_up"]),
        cluster_col: str | None = typer.Option(None, help=COLS["cluster"]),
        horizon: float = typer.Option(26.0, help="Follow-up of the Kaplan-Meier curves in weeks."),
        oversight: Path | None = typer.Option(  # noqa: B008
            None, "--oversight", help="Override rates: the JSON of GET /v1/oversight (admin)."
        ),
        importance: Path | None = typer.Option(  # noqa: B008
            None, "--importance", help="Feature-importance file (nbi importance --out)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Also print one JSON document."),
    ) -> None:
        """Write a self-contained HTML report: the answer first (trial effect, power and information time, best candidate policy, fairness verdict), then the trial with Kaplan-Meier curves and the log-rank test, the off-policy estimates and the fairness audit.

        The arms must be labelled treatment and control (nbi experiment's --treatment-label
        and --control-label are not available here).
        """
        with bad_input_exits():
            from offline_eval.experiment import ExperimentSpec

            inputs = {
                "--logs": logs,
                "--target-probs": target_probs,
                "--rct": rct,
                "--fairness": audit_file,
                "--oversight": oversight,
                "--importance": importance,
            }
            check_output(out, "--out", suffixes=(".html", ".htm"), inputs=inputs.values())
            _check_inputs(inputs)

            spec = ExperimentSpec(
                group_col=group_col,
                outcome_col=outcome_col,
                control_share=control_share,
                covariates=tuple(covariate),
                received_col=received_col,
                time_col=time_col,
                event_col=event_col,
                follow_up_col=follow_up_col,
                cluster_col=cluster_col,
                horizon=horizon,
                hc=hc.upper(),  # type: ignore[arg-type]  # checked by ExperimentSpec
            )
            doc = _build_report(
                out,
                logs,
                policy,
                target_probs,
                rct,
                audit_file,
                spec,
                importance=importance,
                oversight=oversight,
            )
            if as_json:
                emit_json(doc)
            else:
                typer.echo(f"wrote {out}")


def _check_inputs(inputs: dict[str, Path | None]) -> None:
    """Refuse (naming the option) an input file that does not exist or is a directory."""
    for option, path in inputs.items():
        if path is not None and not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            msg = f"{option} {path} {what}"
            raise ValueError(msg)


def _build_report(
    out: Path,
    logs: Path | None,
    policy: list[str],
    target_probs: Path | None,
    rct: Path | None,
    audit_file: Path | None,
    spec: Any,
    oversight: Path | None = None,
    *,
    importance: Path | None = None,
) -> dict[str, Any]:
    from offline_eval.cli_experiment import load_experiment
    from offline_eval.report import render_html
    from offline_eval.report_importance import read_importance

    if logs is None and rct is None and audit_file is None and importance is None:
        msg = "give at least one of --logs, --rct, --fairness, --importance"
        raise ValueError(msg)
    model_importance = read_importance(importance) if importance else None
    evaluations = (
        _run_evaluate(logs, policy, target_probs, 0.5, None, "robust", 1, 0, None) if logs else []
    )
    experiment = load_experiment(rct, spec) if rct else None
    fair_path = audit_file or rct
    fair = None
    fairness_skipped = None
    if fair_path:
        from offline_eval.errors import ExperimentDataError

        attributes = _present_attributes(fair_path)
        try:
            fair = _load_fairness(
                fair_path, attributes, spec.group_col, spec.outcome_col, 0.0, 0.05
            )
        except ExperimentDataError as exc:  # e.g. one arm, or an outcome that is not 0/1:
            # the rest of the report still holds; the audit's section is left out, said so
            fairness_skipped = str(exc)
            typer.echo(f"warning: fairness audit left out: {exc}", err=True)
    sources = [
        (label, path.name)
        for label, path in (
            ("log", logs),
            ("trial", rct),
            ("fairness audit", audit_file),
            ("feature importance", importance),
        )
        if path is not None
    ]
    net_value = _net_value(rct, spec.group_col) if rct else None
    monitoring = _monitoring(fair_path, logs, spec, oversight)
    doc = render_html(
        evaluations=evaluations,
        experiment=experiment,
        fairness=fair,
        cost_benefit=net_value,
        monitoring=monitoring,
        importance=model_importance,
        sources=sources,
    )
    out.write_text(doc, encoding="utf-8")
    return {
        "out": str(out),
        "evaluations": [e.to_dict() for e in evaluations],
        "experiment": None if experiment is None else experiment.to_dict(),
        "fairness": None if fair is None else fair.to_dict(),
        "fairness_skipped": fairness_skipped,
        "cost_benefit": None if net_value is None else net_value.to_dict(),
        "importance": None if model_importance is None else model_importance.to_dict(),
    }


def _monitoring(
    audit: Path | None, logs: Path | None, spec: Any, oversight: Path | None = None
) -> Any:
    """The parity-of-scarce-seats, drift and oversight section's figures (``None``: nothing
    to show)."""
    from offline_eval.logs import read_frame
    from offline_eval.report_monitoring import summarise

    return summarise(
        read_frame(audit) if audit else None,
        read_frame(logs) if logs else None,
        spec.group_col,
        spec.outcome_col,
        oversight=_read_oversight(oversight) if oversight else None,
    )


def _read_oversight(path: Path) -> Any:
    """:func:`offline_eval.report_oversight.read_oversight`; a file that is not JSON is one
    line naming the file and the option."""
    from offline_eval.report_oversight import read_oversight

    try:
        return read_oversight(path)
    except json.JSONDecodeError as exc:
        msg = f"--oversight {path} is not valid JSON ({exc.msg}, line {exc.lineno})"
        raise ValueError(msg) from None
    except UnicodeDecodeError:
        msg = f"--oversight {path} is not a JSON text file"
        raise ValueError(msg) from None


def _net_value(rct: Path, group_col: str) -> Any:
    """The trial's net value in DKK when the file has benefit columns (else ``None``)."""
    from offline_eval.cost_benefit import trial_net_value
    from offline_eval.logs import read_frame

    return trial_net_value(read_frame(rct), group_col)


def _present_attributes(path: Path) -> list[str]:
    from offline_eval.logs import read_frame

    cols = {str(c).removeprefix("protected_") for c in read_frame(path).columns}
    if "age" in cols:
        cols.add("age_band")
    return [a for a in ("gender", "origin", "age_band") if a in cols]
