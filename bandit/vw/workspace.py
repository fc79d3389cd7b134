"""Lifecycle of ``vowpalwabbit.Workspace``: create, predict/learn, save to and load from bytes.

A :class:`VWLearner` owns one workspace and always finishes it: explicitly with
:meth:`VWLearner.close` or ``with``, and otherwise when it is garbage-collected (a
``weakref.finalize`` hook). Models move as bytes through a private temporary file, because the
VW 9 Python API saves and loads models by path only.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bandit.errors import ModelFormatError


def _finish(workspace: object) -> None:
    finish = getattr(workspace, "finish", None)
    if finish is not None:
        finish()


class VWLearner:
    """One VW workspace with a multi-line (ADF) predict/learn API.

    Parameters
    ----------
    args
        VW command-line tokens, e.g. ``["--cb_adf", "-q", "ca", "--quiet"]``.
    model
        Model bytes from :meth:`to_bytes` to start from (``-i``), or ``None`` for a fresh model.

    Examples
    --------
    >>> ex = ["shared |c x", "|a id=p", "|a id=q"]
    >>> with VWLearner(["--cb_adf", "--quiet"]) as vw:
    ...     vw.learn(["shared |c x", "|a id=p", "0:-1:0.5 |a id=q"])
    ...     scores = vw.predict(ex)
    >>> len(scores), scores[1] < scores[0]
    (2, True)
    """

    def __init__(self, args: Sequence[str], *, model: bytes | None = None) -> None:
        import pylibvw
        from vowpalwabbit import Workspace

        self._lib: Any = pylibvw.vw

        self.args = tuple(args)
        if model is None:
            self._ws = Workspace(arg_list=list(self.args))
        else:
            self._ws = _load(Workspace, self.args, model)
        self._finalizer = weakref.finalize(self, _finish, self._ws)

    def predict(self, example: list[str]) -> list[float]:
        """VW's prediction for one multi-line example (scores or probabilities, action order).

        Goes straight to ``pylibvw`` (parse, ``predict_multi``, finish): pyvw's ``predict``
        wraps every parsed line in a Python ``Example`` object, which cost about 4/5 of the
        time at 300 actions. The result is identical (``tests/bandit/test_vw_examples.py``).
        """
        return self.predict_text("\n".join(example))

    def predict_text(self, text: str) -> list[float]:
        """:meth:`predict` on the example's lines already joined by newlines."""
        ws = self._ws
        examples = ws._parse(text)  # noqa: SLF001 (pylibvw's parser)
        try:
            self._lib.predict_multi(ws, examples)
            return list(examples[0].get_action_scores())
        finally:
            self._lib._finish_example_multi_ex(ws, examples)  # noqa: SLF001

    def learn(self, example: list[str]) -> None:
        """Learn from one labelled multi-line example (same fast path as :meth:`predict`)."""
        self.learn_text("\n".join(example))

    def learn_text(self, text: str) -> None:
        """:meth:`learn` on the example's lines already joined by newlines."""
        ws = self._ws
        examples = ws._parse(text)  # noqa: SLF001
        try:
            self._lib.learn_multi(ws, examples)
        finally:
            self._lib._finish_example_multi_ex(ws, examples)  # noqa: SLF001

    def predict_public_api(self, example: list[str]) -> list[float]:
        """The same prediction through pyvw's public ``Workspace.predict`` (reference)."""
        return [float(v) for v in self._ws.predict(example)]

    def to_bytes(self) -> bytes:
        """The model (with its learning state, VW's default ``save_resume``) as bytes."""
        with tempfile.TemporaryDirectory(prefix="nbi-vw-") as tmp:
            path = Path(tmp) / "model.vw"
            self._ws.save(str(path))
            return path.read_bytes()

    def close(self) -> None:
        """Finish the workspace (idempotent)."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        """True once the workspace is finished."""
        return not self._finalizer.alive

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _load(workspace_cls: type, args: tuple[str, ...], model: bytes) -> object:
    if not model:
        msg = "Empty VW model payload"
        raise ModelFormatError(msg)
    with tempfile.TemporaryDirectory(prefix="nbi-vw-") as tmp:
        path = Path(tmp) / "model.vw"
        path.write_bytes(model)
        try:
            return workspace_cls(arg_list=[*args, "-i", str(path)])
        except RuntimeError as exc:  # pylibvw raises RuntimeError for unreadable models
            msg = f"Cannot load the VW model: {exc}"
            raise ModelFormatError(msg) from None
