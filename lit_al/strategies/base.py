"""The Strategy contract.

A strategy is a Lightning ``Callback`` attached to ``trainer.predict`` over the
pool. It declares what ``predict_step`` must produce per example (``needs``),
collects those outputs by pool index while prediction runs, and then turns the
arrays into a batch of pool indices with ``select``.

Array API (tests, benchmarks and other programs drive strategies this way,
without a model)::

    strategy = get_strategy("entropy", seed=0, multi_label=False)
    picked = strategy.select(outputs, labeled, unlabeled, budget)

``outputs`` maps names to arrays with one row per pool example, indexed by pool
index (``probs`` (n, C), ``embeddings`` (n, d), ``mc_probs`` (T, n, C), and
``labels`` (n, C) 0/1 rows for labeled examples); rows a strategy does not need
may be NaN. ``labeled``/``unlabeled`` are pool-index arrays. The result is
``min(budget, len(unlabeled))`` distinct unlabeled pool indices, best first,
ties broken by the lower pool index.

To add a strategy: subclass ``Strategy`` in one file, set ``needs`` and the
class flags, implement ``_select``, and decorate the class with
``@register_strategy("name")``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from ..errors import StrategyError
from ..outputs import PoolOutputStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PredictionRequest:
    """What ``predict_step`` must compute per example, and how.

    ``needs`` are output names (see ``lit_al.prediction`` for the computers);
    ``options`` parameterise them (e.g. ``mc_passes``, ``mc_scope``).
    ``reference`` maps an output registered with ``reference=True`` (see
    ``lit_al.prediction.register_output``) to the labeled rows'
    values of that output, (r, ...) in labeled-pool-index order; it is filled only
    for the unlabeled pass of a strategy with ``predict_labeled_first`` (see
    ``Strategy.attach_prediction_reference``) and is empty otherwise.
    """

    needs: frozenset[str]
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    reference: Mapping[str, Any] = field(default_factory=dict)


def _sorted_unique(indices: np.ndarray) -> np.ndarray:
    """Pool indices as a sorted int64 array without repeats (O(n) when they already are, as the loop passes them)."""
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size > 1 and not (indices[1:] > indices[:-1]).all():
        indices = np.unique(indices)
    return indices


class Strategy(Callback):
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

    def __init__(self, *, seed: int = 0, multi_label: bool = False) -> None:
        super().__init__()
        self.seed = int(seed)
        self.multi_label = bool(multi_label)
        if multi_label and not self.supports_multi_label:
            raise StrategyError(f"strategy {self.name or type(self).__name__!r} does not support multi-label tasks")
        if not multi_label and not self.supports_single_label:
            raise StrategyError(f"strategy {self.name or type(self).__name__!r} supports multi-label tasks only")
        self._store: PoolOutputStore | None = None
        self._reference: dict[str, np.ndarray] = {}
        #: Scores of the last selection, aligned with its result (strategies that rank by a score set it).
        self.last_scores: np.ndarray | None = None

    # ------------------------------------------------------------------ options
    def prediction_options(self) -> dict[str, Any]:
        """Options for the output computers (override to pass e.g. ``mc_passes``)."""
        return {}

    def prediction_request(self) -> PredictionRequest:
        return PredictionRequest(
            needs=frozenset(self.needs),
            options=self.prediction_options(),
            seed=self.seed,
            reference=dict(getattr(self, "_reference", {})),
        )

    @property
    def needs_gradients(self) -> bool:
        """Whether ``predict_step`` takes gradients for this strategy's ``needs`` (any output flagged ``gradients``).

        ``ActiveLoop`` then builds the predict Trainer with ``inference_mode=False``.
        Derived from ``needs``, so per-instance needs (e.g. ``egl``'s variants) are
        covered; a subclass computing gradients some other way may override it with a
        class attribute.
        """
        from ..prediction import flagged_outputs  # lazy: prediction imports this module

        return bool(flagged_outputs("gradients") & set(self.needs))

    @property
    def predict_labeled_first(self) -> bool:
        """Whether the labeled rows get a predict pass of their own before the unlabeled rows.

        True for a strategy with ``predict_labeled`` needing an output flagged
        ``reference``: the unlabeled pass then receives the labeled rows'
        values as ``PredictionRequest.reference`` (``attach_prediction_reference``).
        """
        from ..prediction import flagged_outputs

        return bool(self.predict_labeled) and bool(flagged_outputs("reference") & set(self.needs))

    def attach_prediction_reference(self, labeled: np.ndarray | None) -> None:
        """Give the next predict pass the labeled rows' collected outputs as ``PredictionRequest.reference``.

        Called by ``ActiveLoop`` between the labeled and the unlabeled pass of a
        strategy with ``predict_labeled_first`` (``labeled``: the labeled pool
        indices, ascending), and with ``None`` after the query to drop the copy.
        Only outputs flagged ``reference`` are handed on. The rows come from this
        process's store: under DDP each process holds only the rows it predicted.
        """
        if labeled is None or self._store is None:
            self._reference = {}
            return
        from ..prediction import flagged_outputs

        arrays = self.collected_outputs()
        rows = np.asarray(labeled, dtype=np.int64)
        self._reference = {
            name: np.ascontiguousarray(arrays[name][rows])
            for name in sorted(flagged_outputs("reference") & set(self.needs))
            if name in arrays
        }

    # ------------------------------------------------------------- array API
    def select(
        self,
        outputs: Mapping[str, np.ndarray],
        labeled: np.ndarray,
        unlabeled: np.ndarray,
        budget: int,
    ) -> np.ndarray:
        """Pick ``min(budget, len(unlabeled))`` unlabeled pool indices, best first."""
        budget = int(budget)
        if budget <= 0:
            raise StrategyError(f"budget must be positive, got {budget}")
        labeled = _sorted_unique(labeled)
        unlabeled = _sorted_unique(unlabeled)
        if labeled.size and unlabeled.size:
            seen = np.zeros(int(max(labeled[-1], unlabeled[-1])) + 1, dtype=bool)
            seen[labeled] = True
            if seen[unlabeled].any():
                raise StrategyError("labeled and unlabeled pool indices overlap")
        if unlabeled.size == 0:
            return np.empty(0, dtype=np.int64)
        self._check_outputs(outputs, labeled, unlabeled)
        k = min(budget, unlabeled.size)
        rng = np.random.default_rng(self.seed)
        self.last_scores = None
        picked = np.asarray(self._select(outputs, labeled, unlabeled, k, rng), dtype=np.int64)
        self._check_result(picked, unlabeled, k)
        return picked

    def _select(
        self,
        outputs: Mapping[str, np.ndarray],
        labeled: np.ndarray,
        unlabeled: np.ndarray,
        budget: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        raise NotImplementedError

    def _check_outputs(self, outputs: Mapping[str, np.ndarray], labeled: np.ndarray, unlabeled: np.ndarray) -> None:
        required = set(self.needs) | ({"labels"} if self.uses_labels else set())
        missing = sorted(required - set(outputs))
        if missing:
            raise StrategyError(f"strategy {self.name!r} needs outputs {missing}; got {sorted(outputs)}")
        rows = np.concatenate([unlabeled, labeled]) if self.predict_labeled else unlabeled
        for name in self.needs:
            array = np.asarray(outputs[name]) if not isinstance(outputs[name], np.ndarray) else outputs[name]
            axis = 1 if name == "mc_probs" else 0
            taken = np.take(array, rows, axis=axis)
            if np.isnan(taken).any():
                raise StrategyError(f"strategy {self.name!r}: outputs[{name!r}] has NaN rows for pool indices it needs")

    def _check_result(self, picked: np.ndarray, unlabeled: np.ndarray, k: int) -> None:
        if picked.shape != (k,):
            raise AssertionError(f"strategy {self.name!r} returned {picked.shape[0]} indices, expected {k}")
        if np.unique(picked).size != k:
            raise AssertionError(f"strategy {self.name!r} returned duplicate indices")
        if not np.isin(picked, unlabeled).all():
            raise AssertionError(f"strategy {self.name!r} returned indices outside the unlabeled pool")

    # ------------------------------------------------------- Lightning glue
    def begin_query(self, n_pool: int, directory: str | Path | None = None) -> None:
        """Prepare a fresh output store before ``trainer.predict`` runs over the pool."""
        self._store = PoolOutputStore(n_pool, directory)

    def end_query(self) -> None:
        """Drop the output store of the last query (its memory maps close with it)."""
        self._store = None

    def collected_outputs(self) -> dict[str, np.ndarray]:
        if self._store is None:
            return {}
        self._store.flush()
        return self._store.arrays()

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        request = self.prediction_request()
        if request.reference:
            # moved to the model's device once per pass, not once per batch
            device = getattr(pl_module, "device", None)
            reference = {name: torch.as_tensor(value, device=device) for name, value in request.reference.items()}
            request = replace(request, reference=reference)
        pl_module.prediction_request = request

    def on_predict_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self._store is None:
            raise RuntimeError("Strategy.begin_query must be called before trainer.predict")
        index = batch["pool_index"].detach().cpu().numpy()
        for name, rows in outputs.items():
            self._store.write(name, index, rows.detach().float().cpu().numpy())

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        pl_module.prediction_request = None
        if self._store is not None:
            self._store.flush()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, seed={self.seed}, multi_label={self.multi_label})"
