"""Lifecycle of ``vowpalwabbit.Workspace``: create, predict/learn, save to and load from bytes.

A :class:`VWLearner` owns one workspace and always finishes it: explicitly with
:meth:`VWLearner.close` or ``with``, and otherwise when it is garbage-collected (a
``weakref.finalize`` hook). Models move as bytes through a private temporary file, because the
VW 9 Python API saves and loads models by path only.

Predictions can reuse parsed action examples (:meth:`VWLearner.action_examples`,
:meth:`VWLearner.predict_parsed`): only the ``shared`` line is parsed per call. This is safe for
prediction because VW's ``shared_feature_merger`` appends the shared features to each action
example and truncates them again (a scope guard, also on errors), ``cb_adf`` moves each CB label
out and back and restores ``ft_offset``, and the prediction lands on the shared example; the
cached examples are never given to ``finish_example`` (which would return them to VW's pool),
they are owned by Python (``pylibvw.example``), and the learner drops its own when it is
closed, before the workspace is finished. Skipping the
finish leaves VW's progress counters (``t``, unlabelled examples, example number) out of the
predictions; they only print progress and, for the non-adaptive update rule that this project
never uses, scale the learning rate (``t`` minus unlabelled examples, which predictions leave
unchanged either way). Predictions are bit-identical to the text path
(``tests/bandit/test_vw_parsed_examples.py``).
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bandit.errors import ModelFormatError

_MAX_PARSED = 1024
"""Parsed action examples kept per learner: one VW example takes about 32 KB (256 feature
groups), so at most about 32 MB; the shipped catalog has 330 offers (the text path's example
pool holds as many examples)."""


def _finish(workspace: object, parsed: dict[str, Any]) -> None:
    parsed.clear()  # drop the parsed examples before their workspace
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
        self._example: Any = pylibvw.example
        self._label_type: int = pylibvw.vw.lDefault
        self._parsed: dict[str, Any] = {}
        self.reuse_action_examples = True
        """When False, callers should predict through the text path (a reference switch)."""

        self.args = tuple(args)
        if model is None:
            self._ws = Workspace(arg_list=list(self.args))
        else:
            self._ws = _load(Workspace, self.args, model)
        self._finalizer = weakref.finalize(self, _finish, self._ws, self._parsed)

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

    def action_examples(self, lines: Sequence[str]) -> list[Any]:
        """The parsed (unlabelled) examples of ``lines`` for :meth:`predict_parsed`.

        Each line is parsed once per workspace and reused; a line repeated in ``lines`` gets
        its own example for each repeat (VW merges the shared features into every example of
        the list in place, so one example must not appear twice). The examples belong to this
        learner: give them to no other one, and never to a learn call.
        """
        parsed = self._parsed
        out: list[Any] = []
        seen: set[str] = set()
        for line in lines:
            if line in seen:
                out.append(self._parse_one(line))
                continue
            seen.add(line)
            example = parsed.get(line)
            if example is None:
                if len(parsed) >= _MAX_PARSED:
                    parsed.clear()  # lists already handed out keep their examples alive
                example = parsed[line] = self._parse_one(line)
            out.append(example)
        return out

    def _parse_one(self, line: str) -> Any:  # noqa: ANN401 (a pylibvw.example)
        if "\n" in line:
            msg = "An action example is one line"
            raise ValueError(msg)
        return self._example(self._ws, self._label_type, line)

    def predict_parsed(self, shared: str, actions: list[Any]) -> list[float]:
        """:meth:`predict` of ``[shared, *action lines]`` with the actions already parsed by
        :meth:`action_examples`: only the ``shared`` line is parsed. Bit-identical to
        :meth:`predict_text` on the same lines (the module docstring says why it is safe)."""
        if "\n" in shared:
            msg = "The shared example is one line"
            raise ValueError(msg)
        head = self._example(self._ws, self._label_type, shared)
        self._lib.predict_multi(self._ws, [head, *actions])
        return list(head.get_action_scores())

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
        """Finish the workspace (idempotent); parsed action examples are dropped first."""
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
