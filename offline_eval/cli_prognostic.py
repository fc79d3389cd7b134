"""``nbi prognostic fit | score``: a prognostic score for covariate adjustment of the trial.

``fit`` learns P(employed | case facts) from historical (pre-trial) decisions and writes the
model as JSON; ``score`` adds its ``prognostic_score`` column to a trial file, which
``nbi experiment --covariate prognostic_score`` then uses in Lin's estimator. Bad input exits
2 with one ``error: ...`` line. The model is :mod:`offline_eval.prognostic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    from offline_eval.cli import bad_input_exits, check_output
    from offline_eval.logs import read_frame
    from offline_eval.prognostic import fit

    with bad_input_exits():
        check_output(out, "--out", suffixes=(".json",), inputs=[history])
        frame = read_frame(history)
        if control_only:
            col = next((c for c in ("rct_group", "group") if c in frame.columns), None)
            if col is None:
                msg = "--control-only needs a rct_group or group column"
                raise ValueError(msg)
            frame = frame[frame[str(col)] == "control"]
        model = fit(frame, outcome, ridge=ridge)
        model.save(out)
    typer.echo(
        f"fitted on {model.n_fit} decisions (base rate {model.base_rate:.4f}, "
        f"Brier {model.brier_fit:.4f}); wrote {out}"
    )


def score_cmd(
    model_path: Annotated[Path, typer.Argument(help="A model from 'nbi prognostic fit'.")],
    data: Annotated[Path, typer.Argument(help="Trial file (.csv or .parquet) with case facts.")],
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet; may be DATA).")],
    column: Annotated[
        str,
        typer.Option(help="Name of the new score column; must not be in DATA (see --overwrite)."),
    ] = "prognostic_score",
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace the --column of that name if DATA already has one."
        ),
    ] = False,
) -> None:
    """Add the score column to a trial file (for 'nbi experiment --covariate')."""
    import numpy as np

    from offline_eval.cli import bad_input_exits, check_output
    from offline_eval.logs import read_frame
    from offline_eval.prognostic import PrognosticModel

    with bad_input_exits():
        if not column.strip():
            msg = "--column must be a non-empty name"
            raise ValueError(msg)
        check_output(out, "--out", suffixes=(".csv", ".parquet", ".pq"), inputs=[model_path])
        model = PrognosticModel.load(model_path)
        frame = read_frame(data)
        if column in frame.columns and not overwrite:
            msg = (
                f"--column {column!r} is already a column of {data.name}; choose another name "
                "or pass --overwrite to replace it"
            )
            raise ValueError(msg)
        scores = model.score(frame)
        if not np.isfinite(scores).all():
            msg = f"the model gives non-finite scores on {data.name}; refit it"
            raise ValueError(msg)
        frame[column] = scores
        _write_replacing(frame, out)
    typer.echo(f"scored {len(frame)} rows (mean {float(np.mean(scores)):.4f}); wrote {out}")


def _write_replacing(frame: Any, out: Path) -> None:
    """Write ``frame`` to a temporary file beside ``out``, then move it over ``out``: a failed
    write never leaves DATA half-written when ``out`` is DATA."""
    import os
    import tempfile

    handle, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        if out.suffix.lower() == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
