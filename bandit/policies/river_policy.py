"""Online logistic regression (river) over context x action features, with exploration.

The model predicts the employment probability of an action for a context from the encoded
action features and every context x action feature product (:mod:`bandit.encoding`), so it
learns shared effects across the catalog (family, sector, provider, length) as well as per-offer
effects (the action id is a feature). Exploration:

* ``"epsilon"``: one model; ``epsilon / K`` to each action, the rest shared by the best.
* ``"thompson"``: bootstrapped Thompson sampling. ``n_members`` models each learn every event
  with a Poisson(1) weight (an online bootstrap); Thompson sampling draws a member uniformly and
  plays its greedy action, so the pmf is computed EXACTLY as the share of members whose greedy
  action each action is (ties split) - no Monte-Carlo. The Poisson weights come from
  ``default_rng([seed, n_updates])``, so learning is deterministic and reproducible after a
  reload.

Rewards are clipped to ``[0, 1]``; a fractional reward ``r`` is learned as a positive example
with weight ``r`` and a negative one with weight ``1 - r`` (exact for the log loss). Like
SquareCB's regression oracle, the model is fit without importance weights. Snapshots are JSON
(weights, intercepts, optimiser step counts); nothing is pickled.

References
----------
Osband, I. and Van Roy, B. (2015). Bootstrapped Thompson sampling and deep exploration.
Eckles, D. and Kaptein, M. (2014). Thompson sampling with the online bootstrap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import Any, ClassVar, Self

import numpy as np

from bandit.encoding import encode_features
from bandit.errors import InvalidInputError, ModelFormatError
from bandit.policies.base import Policy
from bandit.policies.smallk import SMALL_K, all_finite
from bandit.types import Action, Features

EXPLORATIONS = ("epsilon", "thompson")
_MAX_CACHE = 20_000
_MAX_MEMBERS = 100
_MAX_CROSS_NAMES = 512
_MAX_NAME_SETS = 256
_MAX_COLUMNS = 1 << 21
_MAX_MATRIX_CELLS = 1 << 21


def _greedy_share(scores: np.ndarray) -> np.ndarray:
    best = scores == scores.max()
    share: np.ndarray = best / float(best.sum())
    return share


class RiverPolicy(Policy):
    """Contextual bandit on river logistic regression(s), epsilon-greedy or bootstrapped Thompson.

    Parameters
    ----------
    exploration
        ``"thompson"`` (default) or ``"epsilon"``.
    epsilon
        Exploration rate for ``"epsilon"``.
    n_members
        Bootstrap ensemble size for ``"thompson"`` (pmf resolution is ``1 / n_members`` before
        the floor).
    learning_rate
        Constant SGD learning rate of every model.
    l2
        L2 penalty of every model.
    floor, seed
        See :class:`~bandit.policies.base.Policy`; ``seed`` also fixes the bootstrap weights.

    Examples
    --------
    >>> from bandit.types import Action
    >>> acts = [Action("a", {"family": "mentor"}), Action("b", {"family": "standard_contact"})]
    >>> policy = RiverPolicy(seed=1, learning_rate=0.5)
    >>> for i in range(40):
    ...     d = policy.choose({"weeks_unemployed": 4}, acts, event_id=f"e{i}")
    ...     policy.learn(d, 1.0 if d.chosen_action.id == "b" else 0.0)
    >>> d = policy.choose({"weeks_unemployed": 4}, acts, event_id="next")
    >>> d.expected_rewards[1] > d.expected_rewards[0], d.pmf[1] > 0.5
    (True, True)
    """

    name: ClassVar[str] = "river"

    def __init__(
        self,
        *,
        exploration: str = "thompson",
        epsilon: float = 0.05,
        n_members: int = 10,
        learning_rate: float = 0.1,
        l2: float = 0.0,
        floor: float = 0.02,
        seed: int = 0,
    ) -> None:
        super().__init__(floor=floor, seed=seed)
        self.exploration = exploration
        self.epsilon = epsilon
        self.n_members = n_members
        self.learning_rate = learning_rate
        self.l2 = l2
        self._validate()
        self._action_items: dict[str, tuple[Action, list[tuple[str, float]]]] = {}
        self._columns = _Columns()
        self._set_models([self._new_model() for _ in range(self._n_models)])

    # ------------------------------------------------------------------ configuration

    def _validate(self) -> None:
        checks: list[tuple[bool, str]] = [
            (self.exploration in EXPLORATIONS, f"exploration must be one of {EXPLORATIONS}"),
            (_finite(self.epsilon) and 0.0 <= self.epsilon <= 1.0, "0 <= epsilon <= 1"),
            (
                isinstance(self.n_members, int) and 1 <= self.n_members <= _MAX_MEMBERS,
                "n_members must be an int in 1..100",
            ),
            (_finite(self.learning_rate) and self.learning_rate > 0, "learning_rate > 0"),
            (_finite(self.l2) and self.l2 >= 0, "l2 >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                msg = f"Invalid RiverPolicy parameter: {message}"
                raise InvalidInputError(msg)

    @property
    def _n_models(self) -> int:
        return self.n_members if self.exploration == "thompson" else 1

    def _new_model(self) -> Any:
        from river import linear_model, optim

        return linear_model.LogisticRegression(
            optimizer=optim.SGD(self.learning_rate), l2=self.l2, intercept_lr=self.learning_rate
        )

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, stored unchanged under the same names."""
        return {
            "exploration": self.exploration,
            "epsilon": self.epsilon,
            "n_members": self.n_members,
            "learning_rate": self.learning_rate,
            "l2": self.l2,
            **super().get_params(),
        }

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"floor": 0.05, "seed": 7}
        yield {"exploration": "epsilon", "epsilon": 0.1, "seed": 3}
        yield {"exploration": "thompson", "n_members": 4, "learning_rate": 0.3, "seed": 5}

    # ------------------------------------------------------------------ features

    def _items(self, action: Action) -> list[tuple[str, float]]:
        hit = self._action_items.get(action.id)
        if hit is not None and (hit[0] is action or hit[0].features == action.features):
            return hit[1]
        if len(self._action_items) >= _MAX_CACHE:
            self._action_items.clear()
        items = [(f"id={action.id}", 1.0), *encode_features(action.features)]
        self._action_items[action.id] = (action, items)
        return items

    def _rows(self, context: Features, actions: Sequence[Action]) -> list[dict[str, float]]:
        """One feature dict per action: the context (``c:``), the action (``a:``) and every
        context x action product (``ctx&act``), in this insertion order."""
        prepared = self._cached_set(actions)
        if prepared is None:
            return self._rows_plain(context, actions)
        ctx = encode_features(context)
        base = {f"c:{k}": v for k, v in ctx}
        layout = self._layout(actions)
        # Keys and values item by item: ("a:item", "ctx1&item", "ctx2&item", ...), the order
        # _rows_plain inserts them in, so every row is the same dict (same order, same floats).
        columns = [layout.a_keys, *(layout.cross(name) for name, _ in ctx)]
        keys = list(chain.from_iterable(zip(*columns, strict=True)))
        factors = np.asarray([1.0, *(value for _, value in ctx)])
        values = np.multiply.outer(layout.a_values, factors).ravel().tolist()
        pairs = zip(keys, values, strict=False)  # one pair iterator, sliced row by row
        width = len(factors)
        rows = []
        for size in layout.sizes:
            row = base.copy()
            row.update(islice(pairs, size * width))
            rows.append(row)
        return rows

    def _layout(self, actions: Sequence[Action]) -> _ActionLayout:
        """The flat item layout of ``actions``: cached on the action set being chosen from,
        built afresh for any other action list."""
        prepared = self._cached_set(actions)
        if prepared is None:
            return _ActionLayout([self._items(a) for a in actions])
        layout: _ActionLayout | None = prepared.cache.get("river")
        if layout is None:
            layout = prepared.cache["river"] = _ActionLayout([self._items(a) for a in actions])
        return layout

    def _rows_plain(self, context: Features, actions: Sequence[Action]) -> list[dict[str, float]]:
        ctx = encode_features(context)
        base = {f"c:{k}": v for k, v in ctx}
        rows = []
        for action in actions:
            items = self._items(action)
            row = dict(base)
            for ak, av in items:
                row[f"a:{ak}"] = av
                for ck, cv in ctx:
                    row[f"{ck}&{ak}"] = cv * av
            rows.append(row)
        return rows

    # ------------------------------------------------------------------ scoring

    def _set_models(self, models: list[Any]) -> None:
        """Install the models and mirror their weights (:class:`_Columns`)."""
        self._models = models
        self._columns.load(models)

    def _predictions(self, context: Features, actions: Sequence[Action]) -> tuple[list[Any], Any]:
        """Every model's ``predict_proba_one(row)[True]`` for every action's row, bit-identical,
        and what :meth:`_learn` needs to rebuild the chosen row (``_raw_scores[1]``).

        The fast path computes river's arithmetic on the mirrored weights: the same products
        (``x * w``), added one by one in the row's insertion order (``np.add.accumulate`` is
        sequential, like river's dot, which walks the feature dict), plus the intercept, through
        river's sigmoid. A key the model has never learned weighs 0 there (river skips it;
        adding a zero product leaves a sum unchanged, up to the sign of a zero sum, which the
        sigmoid ignores). Feature names that could make two row keys collide fall back to
        building the dicts and calling river."""
        fast = self._fast_scores(context, actions)
        if fast is not None:
            return fast
        rows = self._rows(context, actions)
        return [[m.predict_proba_one(x)[True] for x in rows] for m in self._models], rows

    def _fast_scores(
        self, context: Features, actions: Sequence[Action]
    ) -> tuple[list[Any], _FastRows] | None:
        ctx = encode_features(context)
        names, ctx_values = tuple(zip(*ctx, strict=True)) if ctx else ((), ())
        layout = self._layout(actions)
        columns = self._columns
        columns.bound()  # before any column is handed out for this call
        known = columns.context(names) if layout.safe and columns.usable else None
        if known is None:
            return None
        c_keys, c_cols = known
        idx = layout.matrix(names, columns)
        weights = columns.weights()
        factors = np.array((1.0, *ctx_values))
        values = layout.a_values[:, None] * factors  # the rows' item values, item by item
        n_models = len(self._models)
        # Each action's item products in row order, one grid row per action (zero-padded
        # at the end when the actions have different numbers of items).
        products = values * weights[:, idx]
        if layout.equal_sizes:
            grid = products.reshape(n_models, len(layout.sizes), -1)
        else:
            grid = np.zeros((n_models, layout.padded_size(len(factors))))
            grid[:, layout.positions(len(factors))] = products.reshape(n_models, -1)
            grid = grid.reshape(n_models, len(layout.sizes), -1)
        if names:  # every row starts with the context keys: their sum, then the items
            c_sum = np.add.accumulate(factors[1:] * weights[:, c_cols], axis=1)[:, -1:]
            grid[:, :, 0] += c_sum
        dots = np.add.accumulate(grid, axis=2)[:, :, -1].tolist()
        # river.utils.math.sigmoid inlined (river's own code for the log loss's mean_func on
        # a float, ints at the clamps included); tests compare with predict_proba_one.
        preds = []
        for model, row in zip(self._models, dots, strict=True):
            b = model.intercept
            preds.append(
                [
                    0 if (z := d + b) < -30 else 1 if z > 30 else 1 / (1 + math.exp(-z))  # noqa: PLR2004
                    for d in row
                ]
            )
        rows = _FastRows(layout, names, c_keys, factors, values, c_cols, idx)
        rows.generation = columns.generation
        return preds, rows

    def _member_scores(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        preds, rows = self._predictions(context, actions)
        scores = np.array(preds, dtype=float)
        self._raw_scores = (scores, rows)
        return scores

    # ------------------------------------------------------------------ policy hooks

    def _expected_rewards(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        scores = self._member_scores(context, actions)
        self._last_scores = (context, tuple(a.id for a in actions), scores)
        mean: np.ndarray = scores.mean(axis=0)
        return mean

    def _memo_prediction(self, raw: Any, index: int) -> float | None:
        # The chosen action's column as a (members, 1) array, averaged exactly as a
        # one-action prediction is.
        if raw is None:
            return None
        if len(raw[0]) == 1:  # one model: the mean of one value is the value (x / 1 == x)
            return float(raw[0][0][index])
        return float(np.asarray([[row[index]] for row in raw[0]]).mean(axis=0)[0])

    def _choice_scores(
        self, context: Features, actions: Sequence[Action]
    ) -> tuple[np.ndarray | list[float], np.ndarray | list[float]]:
        """From 2 to :data:`~bandit.policies.smallk.SMALL_K` actions the ensemble mean and
        the pmf are computed on lists, in numpy's order (the axis-0 mean of a
        ``(members, K)`` array adds the members one by one), bit-identical."""
        k = len(actions)
        if not 2 <= k <= SMALL_K:  # noqa: PLR2004
            return super()._choice_scores(context, actions)
        preds, rows = self._predictions(context, actions)
        self._raw_scores = (preds, rows)
        if not all(all_finite(p) for p in preds):
            scores = np.array(preds, dtype=float)
            self._last_scores = (context, tuple(a.id for a in actions), scores)
            expected = scores.mean(axis=0)
            return expected, self._pmf(context, actions, expected)
        n = len(preds)
        expected = [total / n for total in _column_sums(preds)]
        if self.exploration == "epsilon":
            base = self.epsilon / k
            keep = 1.0 - self.epsilon
            return expected, [base + keep * share for share in _greedy_share_list(expected)]
        shares = [_greedy_share_list(p) for p in preds]
        return expected, [total / n for total in _column_sums(shares)]

    def _pmf(
        self, context: Features, actions: Sequence[Action], expected: np.ndarray
    ) -> np.ndarray:
        if self.exploration == "epsilon":
            return self.epsilon / len(actions) + (1.0 - self.epsilon) * _greedy_share(expected)
        cached = getattr(self, "_last_scores", None)
        ids = tuple(a.id for a in actions)
        if cached is not None and cached[0] is context and cached[1] == ids:
            scores = cached[2]
        else:
            scores = self._member_scores(context, actions)
        # Each member's greedy share (ties split), stacked: the same values and the same
        # axis-0 mean as averaging the members' _greedy_share one by one.
        best = scores == scores.max(axis=1, keepdims=True)
        shares = best / best.sum(axis=1, keepdims=True).astype(float)
        pmf: np.ndarray = shares.mean(axis=0)
        return pmf

    def _learn(
        self,
        context: Features,
        actions: Sequence[Action],
        index: int,
        propensity: float,
        reward: float,
    ) -> None:
        memo = self._choice_memo
        cols: np.ndarray | None = None
        if (
            memo is not None
            and memo[0].context is context
            and memo[0].actions is actions
            and memo[2] is not None
        ):
            rows = memo[2][1]  # what the choice was scored on (model-free)
            if isinstance(rows, _FastRows):
                x, row_cols = rows.row(index)
                if rows.generation == self._columns.generation:  # else the index started over
                    cols = row_cols
            else:
                x = rows[index]
        else:
            x = self._rows(context, [actions[index]])[0]
        r = min(max(reward, 0.0), 1.0)
        weights: Sequence[int] = (1,)
        if self.exploration == "thompson":
            draw = np.random.default_rng([self.seed % 2**63, self.n_updates])
            weights = draw.poisson(1.0, size=len(self._models)).tolist()
        learned = []
        for m, (model, w) in enumerate(zip(self._models, weights, strict=True)):
            if w > 0 and r > 0.0:
                model.learn_one(x, True, w=float(w) * r)
            if w > 0 and r < 1.0:
                model.learn_one(x, False, w=float(w) * (1.0 - r))
            if w > 0:
                learned.append(m)
        self._columns.sync(self._models, learned, x, cols)

    # ------------------------------------------------------------------ persistence

    def _dump_state(self) -> bytes:
        state = [
            {
                "weights": dict(m.weights),
                "intercept": float(m.intercept),
                "n_iterations": int(m.optimizer.n_iterations),
            }
            for m in self._models
        ]
        return json.dumps(state, sort_keys=True).encode()

    def _load_state(self, payload: bytes) -> None:
        try:
            state = json.loads(payload)
            if not isinstance(state, list) or len(state) != self._n_models:
                raise TypeError
            models = [self._restore(item) for item in state]
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, ValueError):
            msg = "River policy payload is not a valid model state for these parameters"
            raise ModelFormatError(msg) from None
        self._set_models(models)

    def _restore(self, item: Any) -> Any:
        model = self._new_model()
        for key, value in dict(item["weights"]).items():
            model._weights[str(key)] = float(value)  # noqa: SLF001 (river has no weight setter)
        model.intercept = float(item["intercept"])
        model.optimizer.n_iterations = int(item["n_iterations"])
        return model

    def __reduce__(self) -> tuple[Callable[[bytes], Self], tuple[bytes]]:
        """Pickle through the JSON snapshot format."""
        return type(self).from_bytes, (self.to_bytes(),)


def _greedy_share_list(values: list[float]) -> list[float]:
    """:func:`_greedy_share` on a list of finite values (``True / c`` is ``1.0 / c``)."""
    top = max(values)
    count = float(sum(v == top for v in values))
    return [1.0 / count if v == top else 0.0 for v in values]


def _column_sums(rows: list[list[float]]) -> list[float]:
    """Column sums adding the rows one by one (numpy's axis-0 order for 2+ columns)."""
    sums = list(rows[0])
    for row in rows[1:]:
        sums = [a + b for a, b in zip(sums, row, strict=True)]
    return sums


class _ActionLayout:
    """An action set's items laid out flat (action by action, item by item), with the
    ``ctx&item`` key strings built once per context feature name."""

    __slots__ = (
        "_cols",
        "_cross",
        "_generation",
        "_matrices",
        "_positions",
        "a_keys",
        "a_values",
        "names",
        "safe",
        "equal_sizes",
        "sizes",
        "starts",
    )

    def __init__(self, items: list[list[tuple[str, float]]]) -> None:
        self.sizes = [len(i) for i in items]
        self.equal_sizes = len(set(self.sizes)) == 1
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int).tolist()
        self.names = [name for action in items for name, _ in action]
        self.a_keys = tuple(f"a:{name}" for name in self.names)
        self.a_values = np.asarray([value for action in items for _, value in action], float)
        self._cross: dict[str, tuple[str, ...]] = {}
        # Distinct row keys for any context whose names pass _names_ok.
        self.safe = all(
            len({n for n, _ in action}) == len(action) and not any("&" in n for n, _ in action)
            for action in items
        )
        self._generation = -1
        self._cols: dict[str, np.ndarray] = {}
        self._matrices: dict[tuple[str, ...], np.ndarray] = {}
        self._positions: dict[int, np.ndarray] = {}

    def matrix(self, names: tuple[str, ...], columns: _Columns) -> np.ndarray:
        """Weight columns of every item's ``a:item`` key and its ``name&item`` keys, shape
        ``(items, 1 + len(names))``: flattened, the rows' item keys in insertion order."""
        if self._generation != columns.generation:
            self._generation = columns.generation
            self._cols.clear()
            self._matrices.clear()
        idx = self._matrices.get(names)
        if idx is None:
            cells = len(self.names) * (1 + len(names))
            if len(self._matrices) >= max(2, min(_MAX_NAME_SETS, _MAX_MATRIX_CELLS // cells)):
                self._matrices.clear()
            if len(self._cols) >= _MAX_CROSS_NAMES:
                self._cols.clear()
            parts = [self._columns("", columns), *(self._columns(n, columns) for n in names)]
            idx = self._matrices[names] = np.stack(parts, axis=1)
        return idx

    def _columns(self, context_name: str, columns: _Columns) -> np.ndarray:
        cols = self._cols.get(context_name)
        if cols is None:
            keys = self.cross(context_name) if context_name else self.a_keys
            cols = self._cols[context_name] = columns.columns(keys)
        return cols

    def padded_size(self, width: int) -> int:
        """Length of the flat ``(actions, 1 + max_items * width)`` grid of row products."""
        return len(self.sizes) * (1 + max(self.sizes) * width)

    def positions(self, width: int) -> np.ndarray:
        """Where each flattened ``(items, width)`` product lands in the padded grid: action
        ``j``'s products fill its grid row from column 1 in row order (column 0 holds the
        context part; the rest stays 0.0)."""
        pos = self._positions.get(width)
        if pos is None:
            stride = 1 + max(self.sizes) * width
            action = np.repeat(np.arange(len(self.sizes)), self.sizes)
            within = np.arange(len(self.names)) - np.repeat(self.starts, self.sizes)
            base = action * stride + 1 + within * width
            pos = self._positions[width] = (base[:, None] + np.arange(width)).ravel()
        return pos

    def cross(self, context_name: str) -> tuple[str, ...]:
        keys = self._cross.get(context_name)
        if keys is None:
            if len(self._cross) >= _MAX_CROSS_NAMES:
                self._cross.clear()
            keys = self._cross[context_name] = tuple(f"{context_name}&{n}" for n in self.names)
        return keys


def _names_ok(names: tuple[str, ...]) -> bool:
    """Whether context feature names give distinct row keys: no two alike and no ``&`` (then
    ``c:name``, ``a:item`` and ``name&item`` can never collide)."""
    return len(set(names)) == len(names) and not any("&" in n for n in names)


class _Columns:
    """A dense copy of every model's weights, one column per feature key, for scoring.

    ``weights()[m, column(key)]`` is ``models[m]``'s weight of ``key`` (0.0 when it has none).
    It is filled from the models when they are installed (:meth:`load`) and re-read from river
    for the keys of every row a model learns (:meth:`sync`); river updates no other weight (its
    update, the L2 term included, runs on the learned row's keys only), so the copy stays
    exact. Keys get columns as they are scored; past ``_MAX_COLUMNS`` the index starts over
    (and gives up, scoring through river, if the learned keys alone fill it).
    """

    __slots__ = ("_ctx", "_index", "_weights", "generation", "usable")

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._ctx: dict[tuple[str, ...], tuple[tuple[str, ...], np.ndarray] | None] = {}
        self._weights = np.zeros((0, 0))
        self.generation = 0
        self.usable = True

    def load(self, models: list[Any]) -> None:
        self._weights = np.zeros((len(models), max(64, len(self._index))))
        for m, model in enumerate(models):
            items = model._weights.to_dict()  # noqa: SLF001 (the weights themselves)
            cols = self.columns(items)
            self.weights()[m, cols] = np.fromiter(items.values(), float, len(items))

    def column(self, key: str) -> int:
        index = self._index
        col = index.get(key)
        if col is None:
            col = index[key] = len(index)
        return col

    def columns(self, keys: Iterable[str]) -> np.ndarray:
        column = self.column
        return np.fromiter((column(k) for k in keys), np.intp)

    def context(self, names: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray] | None:
        """The ``c:name`` keys of context feature ``names`` and their columns; ``None`` when
        the names could make row keys collide (:func:`_names_ok`)."""
        if names in self._ctx:
            return self._ctx[names]
        if len(self._ctx) >= _MAX_NAME_SETS:
            self._ctx.clear()
        keys = tuple(f"c:{n}" for n in names)
        hit = self._ctx[names] = (keys, self.columns(keys)) if _names_ok(names) else None
        return hit

    def bound(self) -> None:
        """Start the index over when it has grown past ``_MAX_COLUMNS`` (columns handed out
        before this call are then void)."""
        if len(self._index) > _MAX_COLUMNS:
            self._restart()

    def weights(self) -> np.ndarray:
        """The weight matrix, widened (zeros) to cover every column handed out so far."""
        n = len(self._index)
        w = self._weights
        if w.shape[1] < n:
            wider = np.zeros((w.shape[0], max(n, 2 * w.shape[1])))
            wider[:, : w.shape[1]] = w
            self._weights = w = wider
        return w

    def _restart(self) -> None:
        learned = np.flatnonzero((self._weights != 0.0).any(axis=0))
        keys = list(self._index)
        self._index = {}
        self._ctx.clear()
        self.generation += 1
        kept = [keys[c] for c in learned if c < len(keys)]
        old = self._weights[:, learned]
        cols = self.columns(kept)
        self._weights = np.zeros((old.shape[0], max(64, 2 * len(kept))))
        self._weights[:, cols] = old
        if len(kept) > _MAX_COLUMNS // 2:
            self.usable = False

    def sync(
        self,
        models: list[Any],
        learned: list[int],
        x: dict[str, float],
        cols: np.ndarray | None = None,
    ) -> None:
        """Re-read the weights of ``x``'s keys (their columns ``cols`` when known, in ``x``'s
        order) from the models that just learned ``x``."""
        if not learned or not self.usable:
            return
        keys = list(x)
        if cols is None:
            cols = self.columns(keys)
        w = self.weights()
        for m in learned:
            w[m, cols] = models[m]._weights.to_numpy(keys)  # noqa: SLF001


class _FastRows:
    """What a fast-path choice was scored on; rebuilds any action's row dict on demand."""

    __slots__ = ("c_cols", "c_keys", "factors", "generation", "idx", "layout", "names", "values")

    def __init__(
        self,
        layout: _ActionLayout,
        names: tuple[str, ...],
        c_keys: tuple[str, ...],
        factors: np.ndarray,
        values: np.ndarray,
        c_cols: np.ndarray,
        idx: np.ndarray,
    ) -> None:
        self.layout = layout
        self.generation = 0
        self.names = names
        self.c_keys = c_keys
        self.factors = factors
        self.values = values
        self.c_cols = c_cols
        self.idx = idx

    def row(self, index: int) -> tuple[dict[str, float], np.ndarray]:
        """The row :meth:`RiverPolicy._rows_plain` builds for action ``index`` (same keys,
        same order, same floats) and the weight columns of its keys, in that order."""
        layout = self.layout
        start = layout.starts[index]
        stop = start + layout.sizes[index]
        row = dict(zip(self.c_keys, self.factors[1:].tolist(), strict=True))
        cross = layout.cross
        columns = [layout.a_keys[start:stop], *(cross(n)[start:stop] for n in self.names)]
        keys = chain.from_iterable(zip(*columns, strict=True))
        row.update(zip(keys, self.values[start:stop].ravel().tolist(), strict=True))
        return row, np.concatenate([self.c_cols, self.idx[start:stop].ravel()])


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
