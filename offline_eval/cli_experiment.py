"""``nbi experiment``: the RCT analysis of a trial file (one row per citizen).

Columns follow :mod:`offline_eval.trial_data` (the simulator's ``decisions.csv`` works as it
is); every column can be renamed with an option. Bad input exits 2 with one ``error:`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from offline_eval.cost_benefit import TrialNetValue
    from offline_eval.experiment import ExperimentResult, ExperimentSpec


def load_experiment(rct_file: Path, spec: ExperimentSpec) -> ExperimentResult:
    """Read ``rct_file`` (.parquet/.csv) and analyse it."""
    from offline_eval.experiment import analyse
    from offline_eval.logs import read_frame

    return analyse(read_frame(rct_file), spec)


_COLUMN_HELP = {
    "group": "Column with the RCT arm.",
    "outcome": "Outcome column: 0/1 (e.g. employed within the horizon) or continuous.",
    "received": "Column: 1 if the citizen received the treatment, as recorded in BOTH arms "
    "(default: `complied` when present). Used for the Wald/2SLS effect on compliers.",
    "time": "Column with weeks to the event (default: `weeks_to_job` when present); empty = "
    "no event, unless --event-col is given.",
    "event": "Column with 1 = event at the time column, 0 = censored there (lifelines style).",
    "follow_up": "Column with each citizen's weeks of follow-up (default: `follow_up_weeks` "
    "when present; else everybody is followed --horizon weeks).",
    "cluster": "Column with the randomisation cluster (pseudonymised caseworker or job centre) "
    "when the control arm was assigned by cluster: the ITT (and Lin) get CR2 cluster-robust "
    "intervals with Bell-McCaffrey df, the MDE the ICC's design effect, and the sample-ratio "
    "check counts clusters (exact binomial). Every cluster must be in one arm.",
}


def register_experiment(app: typer.Typer) -> None:
    """Add ``nbi experiment`` to ``app``."""

    @app.command()
    def experiment(  # noqa: PLR0913 (one option per column of the file)
        rct_file: Annotated[
            Path, typer.Argument(help="RCT file, one row per citizen (.parquet/.csv).")
        ],
        group_col: Annotated[str, typer.Option(help=_COLUMN_HELP["group"])] = "group",
        outcome_col: Annotated[str, typer.Option(help=_COLUMN_HELP["outcome"])] = "employed",
        treatment_label: Annotated[
            str, typer.Option(help="Label of the recommender arm.")
        ] = "treatment",
        control_label: Annotated[str, typer.Option(help="Label of the control arm.")] = "control",
        control_share: Annotated[
            float,
            typer.Option(
                help="Configured control share, 0 < share < 1 (for the sample-ratio check; "
                "of clusters with --cluster-col)."
            ),
        ] = 0.2,
        covariate: Annotated[
            list[str] | None,
            typer.Option(
                "--covariate",
                help="Pre-treatment covariate for Lin adjustment (repeatable). Refused: the "
                "group, outcome, received, time and event columns, latent_type, and any "
                "covariate that determines the arm.",
            ),
        ] = None,
        hc: Annotated[
            str, typer.Option("--hc", help="Robust variance of the Lin estimate: HC2 or HC3.")
        ] = "HC2",
        received_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["received"])] = None,
        time_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["time"])] = None,
        event_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["event"])] = None,
        follow_up_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["follow_up"])] = None,
        cluster_col: Annotated[str | None, typer.Option(help=_COLUMN_HELP["cluster"])] = None,
        horizon: Annotated[
            float,
            typer.Option(help="Follow-up of the time-to-event analysis in weeks (censoring)."),
        ] = 26.0,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    ) -> None:
        """RCT analysis: ITT, Lin-adjusted effect, compliance/IV, SRM, MDE, Kaplan-Meier, log-rank."""
        from offline_eval.cli import bad_input_exits, emit_json
        from offline_eval.cost_benefit import net_value_lines

        with bad_input_exits():
            from offline_eval.experiment import ExperimentSpec

            spec = ExperimentSpec(
                group_col=group_col,
                outcome_col=outcome_col,
                treatment_label=treatment_label,
                control_label=control_label,
                control_share=control_share,
                covariates=tuple(covariate or ()),
                received_col=received_col,
                time_col=time_col,
                event_col=event_col,
                follow_up_col=follow_up_col,
                horizon=horizon,
                hc=hc.upper(),  # type: ignore[arg-type]  # checked by ExperimentSpec
                cluster_col=cluster_col,
            )
            result = load_experiment(rct_file, spec)
            nv = _net_value(rct_file, spec)
            for note in result.warnings:
                typer.echo(f"warning: {note}", err=True)
            if as_json:
                emit_json({**result.to_dict(), "net_value": None if nv is None else nv.to_dict()})
                return
            lines = experiment_lines(result) + ([] if nv is None else net_value_lines(nv))
            typer.echo("\n".join(lines))


def _net_value(rct_file: Path, spec: ExperimentSpec) -> TrialNetValue | None:
    """The trial's net value in DKK when the file has ``benefit_dkk`` (else ``None``)."""
    from offline_eval.cost_benefit import trial_net_value
    from offline_eval.logs import read_frame

    return trial_net_value(
        read_frame(rct_file), spec.group_col, spec.treatment_label, spec.control_label
    )


def _row(label: str, value: str) -> str:
    """One line: the value at column 31, or 2 spaces after a longer label."""
    return f"{label:<29}  {value}"


def _effect(label: str, e: Any) -> str:
    return _row(label, f"{e.estimate:+.4f}  [{e.ci_low:+.4f}, {e.ci_high:+.4f}]  p={e.p_value:.3g}")


def experiment_lines(result: ExperimentResult) -> list[str]:
    """The terminal summary of an analysis, one line per figure."""
    kind = "rate" if result.outcome_type == "binary" else "mean"
    lines = [
        _row("n treatment / control", f"{result.n_treatment} / {result.n_control}"),
        _row("outcome", f"{result.outcome_col} ({result.outcome_type})"),
        _row(
            f"{kind} treatment / control",
            f"{result.employment_treatment:.4f} / {result.employment_control:.4f}",
        ),
    ]
    cl = result.cluster
    if cl is None:
        lines.append(_effect("ITT (Neyman)", result.itt))
    else:
        fit = cl.fit
        lines.append(_effect(f"ITT ({fit.se_type}, {fit.n_clusters} clusters)", result.itt))
        lines.append(
            _row(
                "  ICC / design effect",
                f"{cl.icc:.4f} / {cl.design_effect:.3f}  (df {fit.df:.1f})",
            )
        )
    if result.lin is not None:
        kind = result.hc if cl is None else cl.fit.se_type
        lines.append(_effect(f"ITT (Lin, {kind})", result.lin))
    if result.compliance is not None:
        c = result.compliance
        fs = c.first_stage
        weak = "  WEAK (F < 10)" if fs.weak else ""
        lines += [
            _row(
                f"received ({result.received_col}) t / c",
                f"{c.rate_treatment:.4f} / {c.rate_control:.4f}",
            ),
            _row("first stage (robust F)", f"{fs.difference:+.4f}  F={fs.f_stat:.1f}{weak}"),
            _effect("effect on compliers (2SLS)", c.late),
        ]
    s = result.srm
    flag = "MISMATCH" if s.mismatch else "ok"
    lines.append(
        _row(
            f"control share ({s.unit})",
            f"{s.observed_share:.4f} vs {s.expected_share:.4f}  p={s.p_value:.3g} {flag}  "
            f"({s.n_control} of {s.n_total} {s.unit}, {s.test})",
        )
    )
    basis = "control rate" if result.outcome_type == "binary" else "pooled SD"
    lines.append(_row(f"MDE (80% power, {basis})", f"{result.mde:.4f}"))
    lines += _survival_lines(result)
    return lines


def _survival_lines(result: ExperimentResult) -> list[str]:
    surv = result.survival
    if surv is None:
        return []
    h = surv.data.horizon
    lines = [_row("time to event", f"{surv.data.time_col}, follow-up {h:g} weeks")]
    for arm, km in surv.km.items():
        median = km.median()
        shown = "not reached" if median is None else f"{median:g} weeks"
        lines.append(
            _row(
                f"  Kaplan-Meier {arm}",
                f"S({h:g})={km.at(h):.4f}  median {shown}  events {int(km.events.sum())}",
            )
        )
    lr = surv.logrank
    lines.append(_row("log-rank", f"chi2={lr.chi2:.3f}  p={lr.p_value:.3g}"))
    return lines
