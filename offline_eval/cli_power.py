"""``nbi power``: the MDE of a planned trial, or the duration that reaches a target MDE.

A table by default, one JSON document with ``--json``; bad input exits 2 with one
``error: ...`` line. The formula and its convention are in :mod:`offline_eval.power`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

_HELP = """Minimum detectable effect (MDE) of a planned trial, or the duration for a target MDE.

MDE = (z(1-alpha/2) + z(power)) x sqrt(var x (1/n_t + 1/n_c) x deff x (1 - R^2))

var = p(1-p) for a 0/1 outcome (--baseline-rate p), SD^2 for a continuous one (--sd).
n = inflow x duration, split by --control-share (at least 2 citizens per arm). For a 0/1
outcome the MDE must stay below max(p, 1-p): p +- MDE has to be a rate.

deff = 1 + ((1 + CV^2) m - 1) ICC for cluster randomisation (m = mean cluster size).

Examples:
nbi power --baseline-rate 0.6 --inflow 700 --duration 52
nbi power --baseline-rate 0.6 --inflow 700 --mde 0.015 --r-squared 0.15
nbi power --sd 8 --inflow 3000 --per month --duration 12 --icc 0.02 --clusters 12
"""


def register(app: typer.Typer) -> None:
    """Add ``nbi power`` to the root app."""
    app.command(name="power", help=_HELP, no_args_is_help=True)(power)


def power(  # noqa: PLR0913 (one option per planning input)
    inflow: Annotated[
        float, typer.Option(help="Citizens entering the trial per period (see --per).")
    ],
    baseline_rate: Annotated[
        float | None,
        typer.Option(help="0/1 outcome: the control-arm rate p (e.g. 0.6 employed at week 26)."),
    ] = None,
    sd: Annotated[
        float | None, typer.Option(help="Continuous outcome: its standard deviation.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Trial length in periods: report the MDE.")
    ] = None,
    mde: Annotated[
        float | None,
        typer.Option("--mde", help="Target MDE (outcome units; 0.02 = 2 pp): report the duration."),
    ] = None,
    per: Annotated[str, typer.Option(help="Period of --inflow and --duration: week or month.")] = (
        "week"
    ),
    control_share: Annotated[
        float, typer.Option(help="Share of citizens (or clusters) in the control arm.")
    ] = 0.2,
    icc: Annotated[float, typer.Option(help="Intra-cluster correlation of the outcome.")] = 0.0,
    cluster_size: Annotated[
        float | None, typer.Option(help="Mean citizens per cluster over the trial (fixed).")
    ] = None,
    clusters: Annotated[
        float | None,
        typer.Option(help="Number of clusters randomised (cluster size grows with duration)."),
    ] = None,
    cluster_cv: Annotated[
        float, typer.Option(help="Coefficient of variation of the cluster sizes (0 = equal).")
    ] = 0.0,
    r_squared: Annotated[
        float, typer.Option(help="Outcome variance explained by the adjustment covariates.")
    ] = 0.0,
    alpha: Annotated[float, typer.Option(help="Two-sided significance level.")] = 0.05,
    power_: Annotated[
        float, typer.Option("--power", help="Power (1 - beta), above --alpha and below 1.")
    ] = 0.8,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Minimum detectable effect of a planned trial, or the duration for a target MDE."""
    from offline_eval.cli import bad_input_exits, emit_json

    with bad_input_exits():
        if (duration is None) == (mde is None):
            msg = "Give exactly one of --duration (report the MDE) or --mde (report the duration)"
            raise ValueError(msg)
        if per not in ("week", "month"):
            msg = f"--per must be week or month, got {per!r}"
            raise ValueError(msg)
        from offline_eval.power import Design, plan_duration, plan_mde

        design = Design(
            control_share=control_share,
            inflow=inflow,
            per="week" if per == "week" else "month",
            baseline_rate=baseline_rate,
            sd=sd,
            icc=icc,
            cluster_size=cluster_size,
            n_clusters=clusters,
            cluster_cv=cluster_cv,
            r_squared=r_squared,
            alpha=alpha,
            power=power_,
        )
        if duration is not None:
            plan = plan_mde(design, duration)
        elif mde is not None:
            plan = plan_duration(design, mde)
    doc = plan.to_dict()
    doc["solved_for"] = "mde" if duration is not None else "duration"
    if as_json:
        emit_json(doc)
        return
    _print_plan(doc)


def _print_plan(doc: dict[str, Any]) -> None:
    binary = doc["outcome"] == "binary"
    unit = "pp" if binary else "outcome units"
    scale = 100.0 if binary else 1.0
    per = doc["per"]
    rows: list[tuple[str, str]] = [
        (
            "outcome",
            f"0/1, baseline rate {doc['baseline_rate']:g}"
            if binary
            else f"continuous, SD {doc['sd']:g}",
        ),
        ("inflow", f"{doc['inflow']:,.0f} citizens per {per}"),
        ("duration", f"{doc['duration']:,.1f} {per}s"),
        ("citizens", f"{doc['n_total']:,.0f} ({doc['n_control']:,.0f} in control)"),
        ("control share", f"{doc['control_share']:g}"),
    ]
    if doc["icc"] > 0 or doc["n_clusters"] is not None or doc["mean_cluster_size"] > 1:
        clusters = "" if doc["n_clusters"] is None else f"{doc['n_clusters']:g} clusters, "
        rows.append(
            (
                "clustering",
                f"{clusters}mean size {doc['mean_cluster_size']:,.1f}, ICC {doc['icc']:g}, "
                f"CV {doc['cluster_cv']:g}",
            )
        )
    rows += [
        ("design effect", f"{doc['design_effect']:.3f}"),
        ("adjustment R^2", f"{doc['r_squared']:g}"),
        ("alpha, power", f"{doc['alpha']:g} two-sided, {doc['power']:g}"),
        ("MDE", f"{doc['mde'] * scale:.3g} {unit}"),
    ]
    if doc["mde_floor"] is not None:
        rows.append(("MDE floor", f"{doc['mde_floor'] * scale:.3g} {unit} at any duration"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name.ljust(width)}  {value}")
