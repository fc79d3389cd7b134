"""Generate ``prognostic_reference.json``: statsmodels' logistic MLE on the seeded frame of
``tests/offline_eval/test_prognostic.py`` (the design standardised exactly as
``offline_eval.prognostic`` does), for the unpenalised fit to be compared against.

statsmodels is not a project dependency: ``pip install statsmodels`` into the venv, then run
``python tests/offline_eval/reference/make_prognostic_reference.py`` from the project root.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def main() -> None:
    import statsmodels
    import statsmodels.api as sm

    sys.path.insert(0, str(HERE.parents[2]))
    from offline_eval.prognostic import _design, fit
    from tests.offline_eval.test_prognostic import _frame

    df = _frame(3000, 0)
    model = fit(df, ridge=0.0)
    x = _design(df, model.numeric, model.boolean, model.levels)
    x = (x - np.asarray(model.mean)) / np.asarray(model.scale)
    ref = sm.Logit(df["reward"].to_numpy(float), sm.add_constant(x)).fit(disp=0, tol=1e-12)
    doc = {
        "generator": "make_prognostic_reference.py",
        "statsmodels": statsmodels.__version__,
        "frame": "_frame(3000, 0) of test_prognostic.py",
        "params": [float(v) for v in ref.params],
        "predictions": [float(v) for v in ref.predict(sm.add_constant(x))],
    }
    (HERE / "prognostic_reference.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
