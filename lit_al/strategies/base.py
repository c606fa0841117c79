"""The Strategy contract.

A strategy declares what the model must produce per pool example (``needs``:
names from ``lit_al.outputs.catalog``) and turns those arrays into a batch of
pool indices with ``select``. It knows nothing of Lightning or of the model:
``lit_al.scoring.PoolScorer`` runs the prediction passes that fill the arrays.

Array API (the loop, tests, benchmarks and other programs drive strategies this way)::

    strategy = get_strategy("entropy", multi_label=False)
    selection = strategy.select(outputs, labeled, unlabeled, budget, seed=0)
    selection.indices, selection.scores, selection.info

``outputs`` maps names to arrays with one row per pool example, indexed by pool
index (``probs`` (n, C), ``embeddings`` (n, d), ``mc_probs`` (T, n, C), and
``labels`` (n, C) 0/1 rows for labeled examples); rows a strategy does not need
may be NaN. ``labeled``/``unlabeled`` are pool-index arrays. The result holds
``min(budget, len(unlabeled))`` distinct unlabeled pool indices, best first,
ties broken by the lower pool index; the same inputs and seed give the same
result.

To add a strategy: subclass ``Strategy`` in one file, set ``needs`` and the
class flags, implement ``_select`` (return the picked indices, or a
``Selection`` when the picks come with scores or details), and decorate the
class with ``@register_strategy("name")``. An output lit_al does not compute is a
``lit_al.outputs.Output`` subclass in the strategy's own module, named in ``needs``
by its ``name`` (its options go under that name in ``prediction_options()``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import numpy as np

from ..errors import StrategyError
from ..functional.ranking import top_k
from ..outputs.catalog import LABELS, PredictionRequest, check_names, flagged
from ..rows import has_nan_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """What ``Strategy.select`` returns.

    ``indices``: the picked pool indices, best first. ``scores``: one score per pick
    (NaN for strategies that do not rank by a score). ``info``: strategy-specific
    details (e.g. BatchBALD's saturated steps, a cold-start fallback).
    """

    indices: np.ndarray
    scores: np.ndarray | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        indices = np.asarray(self.indices, dtype=np.int64)
        object.__setattr__(self, "indices", indices)
        if self.scores is None:
            scores = np.full(indices.shape, np.nan)
        else:
            scores = np.asarray(self.scores, dtype=float)
            if scores.shape != indices.shape:
                raise ValueError(f"a selection needs one score per pick: {scores.shape} scores for {indices.shape} picks")
        object.__setattr__(self, "scores", scores)

    def __len__(self) -> int:
        return int(self.indices.size)


def top_scored(scores: np.ndarray, unlabeled: np.ndarray, budget: int, *, largest: bool = True) -> Selection:
    """The ``budget`` best of ``scores`` (one per ``unlabeled`` pool index) as a ``Selection`` with their scores.

    Best first by ``functional.ranking.top_k``'s rule: highest score (lowest with
    ``largest=False``), ties to the lower pool index.
    """
    order = top_k(scores, budget, largest=largest, index=unlabeled)
    return Selection(unlabeled[order], scores[order])


def _sorted_unique(indices: np.ndarray) -> np.ndarray:
    """Pool indices as a sorted int64 array without repeats (O(n) when they already are, as the loop passes them)."""
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size > 1 and not (indices[1:] > indices[:-1]).all():
        indices = np.unique(indices)
    return indices


def _sorted_contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Elementwise ``queries in sorted_values`` by binary search: O(q log n), no pass over ``sorted_values``."""
    positions = np.minimum(np.searchsorted(sorted_values, queries), sorted_values.size - 1)
    return sorted_values[positions] == queries


def _sorted_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two sorted index arrays share a value (the shorter one searched in the longer)."""
    short, long = (a, b) if a.size <= b.size else (b, a)
    return bool(_sorted_contains(long, short).any())


class Strategy:
    """Base class of every query strategy (see the module docstring for the contract)."""

    #: Registered name (set by ``register_strategy``).
    name: ClassVar[str] = ""
    #: Outputs ``predict_step`` must produce for every predicted example.
    needs: ClassVar[frozenset[str]] = frozenset()
    #: Whether the outputs are needed on labeled rows too (e.g. Core-Set's initial centers).
    predict_labeled: ClassVar[bool] = False
    #: Whether ``outputs['labels']`` (0/1 rows of the labeled examples) is required.
    uses_labels: ClassVar[bool] = False
    #: Whether the scores only make sense with a model fine-tuned on labels (cold-start fallback).
    requires_trained_model: ClassVar[bool] = False
    supports_single_label: ClassVar[bool] = True
    supports_multi_label: ClassVar[bool] = True
    #: ``{name: ..., options}`` of the strategy a cold-start round uses instead (None: ``loop.cold_start_fallback``).
    cold_start_fallback: dict[str, Any] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        needs = vars(cls).get("needs")
        if isinstance(needs, frozenset):  # per-instance needs are checked when the request is built
            check_names(needs, f"strategy class {cls.__name__}")

    def __init__(self, *, multi_label: bool = False) -> None:
        self.multi_label = bool(multi_label)
        if multi_label and not self.supports_multi_label:
            raise StrategyError(f"strategy {self.name or type(self).__name__!r} does not support multi-label tasks")
        if not multi_label and not self.supports_single_label:
            raise StrategyError(f"strategy {self.name or type(self).__name__!r} supports multi-label tasks only")

    # ------------------------------------------------------------------ options
    def prediction_options(self) -> dict[str, Any]:
        """Options for the output computers (override to pass e.g. ``mc_passes``)."""
        return {}

    def prediction_request(self, seed: int = 0) -> PredictionRequest:
        """What the scorer must compute for this strategy; options are validated here, once."""
        return PredictionRequest(needs=frozenset(self.needs), options=self.prediction_options(), seed=int(seed))

    @property
    def predict_labeled_first(self) -> bool:
        """Whether the labeled rows get a prediction pass of their own before the unlabeled rows.

        True for a strategy needing an output flagged ``reference`` (ALDEN's, a plug-in's): the
        unlabeled pass then receives the labeled rows' values as ``PredictionRequest.reference``,
        and the labeled rows keep theirs in the pool's arrays, as with ``predict_labeled``.
        """
        return bool(flagged("reference") & set(self.needs))

    # ------------------------------------------------------- run-level record
    def run_record(self) -> dict[str, Any]:
        """Values this strategy fixed once for the whole run (ProbCover's δ), as JSON-able data.

        The loop saves them in ``state.json`` with each proposed batch and hands them back
        through ``restore_run_record`` before every selection, so a resumed run reuses them.
        """
        return {}

    def restore_run_record(self, record: Mapping[str, Any]) -> None:
        """Take back what ``run_record`` returned earlier in the run (possibly in another process)."""

    # ------------------------------------------------------------- array API
    def select(
        self,
        outputs: Mapping[str, np.ndarray],
        labeled: np.ndarray,
        unlabeled: np.ndarray,
        budget: int,
        seed: int = 0,
    ) -> Selection:
        """Pick ``min(budget, len(unlabeled))`` unlabeled pool indices, best first (``seed``: the round's stream)."""
        budget = int(budget)
        if budget <= 0:
            raise StrategyError(f"budget must be positive, got {budget}")
        labeled = _sorted_unique(labeled)
        unlabeled = _sorted_unique(unlabeled)
        if labeled.size and unlabeled.size and _sorted_overlap(labeled, unlabeled):
            raise StrategyError("labeled and unlabeled pool indices overlap")
        if unlabeled.size == 0:
            return Selection(np.empty(0, dtype=np.int64))
        self._check_outputs(outputs, labeled, unlabeled)
        k = min(budget, unlabeled.size)
        result = self._select(outputs, labeled, unlabeled, k, np.random.default_rng(int(seed)))
        selection = result if isinstance(result, Selection) else Selection(result)
        self._check_result(selection.indices, unlabeled, k)
        return selection

    def _select(
        self,
        outputs: Mapping[str, np.ndarray],
        labeled: np.ndarray,
        unlabeled: np.ndarray,
        budget: int,
        rng: np.random.Generator,
    ) -> np.ndarray | Selection:
        raise NotImplementedError

    def _check_outputs(self, outputs: Mapping[str, np.ndarray], labeled: np.ndarray, unlabeled: np.ndarray) -> None:
        required = set(self.needs) | ({LABELS} if self.uses_labels else set())
        missing = sorted(required - set(outputs))
        if missing:
            raise StrategyError(f"strategy {self.name!r} needs outputs {missing}; got {sorted(outputs)}")
        rows = np.concatenate([unlabeled, labeled]) if self.predict_labeled else unlabeled
        for name in self.needs:
            array = np.asarray(outputs[name]) if not isinstance(outputs[name], np.ndarray) else outputs[name]
            axis = 1 if name in flagged("sample_axis") else 0
            if has_nan_rows(array, rows, axis=axis):
                raise StrategyError(f"strategy {self.name!r}: outputs[{name!r}] has NaN rows for pool indices it needs")

    def _check_result(self, picked: np.ndarray, unlabeled: np.ndarray, k: int) -> None:
        if picked.shape != (k,):
            raise AssertionError(f"strategy {self.name!r} returned {picked.shape[0]} indices, expected {k}")
        if np.unique(picked).size != k:
            raise AssertionError(f"strategy {self.name!r} returned duplicate indices")
        if not _sorted_contains(unlabeled, picked).all():
            raise AssertionError(f"strategy {self.name!r} returned indices outside the unlabeled pool")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, multi_label={self.multi_label})"
