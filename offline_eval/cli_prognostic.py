"""``nbi prognostic fit | score``: a prognostic score for covariate adjustment of the trial.

``fit`` learns P(employed | case facts) from historical (pre-trial) decisions and writes the
model as JSON; ``score`` adds its ``prognostic_score`` column to a trial file, which
``nbi experiment --covariate prognostic_score`` then uses in Lin's estimator. Bad input exits
2 with one ``error: ...`` line. The model is :mod:`offline_eval.prognostic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_HELP = """Prognostic score: P(employed | case facts) fitted on pre-trial data, for Lin's adjustment.

Example (simulator):
nbi simulate logs --out history.parquet --n-rounds 20000 --seed 1
nbi prognostic fit history.parquet --out prognostic.json
nbi simulate run --weeks 78 --out run
nbi prognostic score prognostic.json run/decisions.csv --out run/decisions.csv
nbi experiment run/decisions.csv --covariate prognostic_score
"""


def register(app: typer.Typer) -> None:
    """Add ``nbi prognostic`` (``fit``, ``score``) to the root app."""
    prognostic = typer.Typer(help=_HELP, no_args_is_help=True)
    prognostic.command("fit")(fit_cmd)
    prognostic.command("score")(score_cmd)
    app.add_typer(prognostic, name="prognostic")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def fit_cmd(
    history: Annotated[
        Path, typer.Argument(help="Pre-trial decisions with case facts and a 0/1 outcome.")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the model (.json).")],
    outcome: Annotated[str, typer.Option(help="The 0/1 outcome column.")] = "reward",
    ridge: Annotated[float, typer.Option(help="L2 penalty on standardised coefficients.")] = 1.0,
    control_only: Annotated[
        bool,
        typer.Option(
            help="Fit on rows with rct_group/group == control only (an earlier trial period)."
        ),
    ] = False,
) -> None:
    """Fit the score on historical decisions (practice as usual before the trial)."""
    from bandit.errors import InvalidInputError
    from offline_eval.logs import read_frame
    from offline_eval.prognostic import fit

    if out.suffix.lower() != ".json":
        _fail(f"--out must end in .json, got {out.name!r}")
    try:
        frame = read_frame(history)
        if control_only:
            col = next((c for c in ("rct_group", "group") if c in frame.columns), None)
            if col is None:
                _fail("--control-only needs a rct_group or group column")
            frame = frame[frame[str(col)] == "control"]
        model = fit(frame, outcome, ridge=ridge)
    except InvalidInputError as exc:
        _fail(str(exc).splitlines()[0])
        return
    model.save(out)
    typer.echo(
        f"fitted on {model.n_fit} decisions (base rate {model.base_rate:.4f}, "
        f"Brier {model.brier_fit:.4f}); wrote {out}"
    )


def score_cmd(
    model_path: Annotated[Path, typer.Argument(help="A model from 'nbi prognostic fit'.")],
    data: Annotated[Path, typer.Argument(help="Trial file (.csv or .parquet) with case facts.")],
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet; may be DATA).")],
    column: Annotated[str, typer.Option(help="Name of the score column.")] = "prognostic_score",
) -> None:
    """Add the score column to a trial file (for ``nbi experiment --covariate``)."""
    from bandit.errors import InvalidInputError
    from offline_eval.logs import read_frame
    from offline_eval.prognostic import PrognosticModel

    if out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        _fail(f"--out must end in .csv or .parquet, got {out.name!r}")
    try:
        model = PrognosticModel.load(model_path)
        frame = read_frame(data)
        frame[column] = model.score(frame)
    except InvalidInputError as exc:
        _fail(str(exc).splitlines()[0])
        return
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    typer.echo(f"scored {len(frame)} rows (mean {frame[column].mean():.4f}); wrote {out}")
