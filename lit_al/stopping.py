"""When to stop labeling: the stop set, the signals the loop logs every round, and ``loop.stop_when``.

Every round that trains a model scores a fixed *stop set* of pool examples (drawn once
per run from the run seed) and logs, in ``metrics.csv``:

- ``stop_kappa``: Cohen's kappa between this round's and the previous round's
  predictions on the stop set, and ``stop_kappa_mean`` the mean over the last
  ``stop_when.window`` comparisons (stabilizing predictions, Bloodgood &
  Vijay-Shanker 2009);
- ``stop_overall_uncertainty``: the mean normalised entropy over the stop-set examples
  still unlabeled (Zhu, Wang & Hovy 2008, overall-uncertainty);
- ``stop_max_uncertainty``: the largest normalised entropy over the unlabeled pool the
  round scores, i.e. that of the example uncertainty sampling would query first (Zhu,
  Wang & Hovy 2008, max-confidence: stop once even the example the learner would ask
  about is certain). It is known only after the pool is scored (``pool_max_uncertainty``),
  so the loop adds it then, and a round it stops queries nothing;
- ``stop_expected_error``: the mean expected error over those examples;
- ``labels_<class>`` and ``class_balance``: label counts of the labeled set and its
  minority/majority ratio;
- ``stop_reason``: the criteria of ``loop.stop_when`` that fired ("" when none did).

Each round's hard predictions on the stop set are kept in
``run_dir/stopping/round_XXX.npy`` (atomic writes), so a resumed run compares with the
rounds before it exactly as an uninterrupted one does.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .analysis.stopping import (
    class_balance,
    cohen_kappa,
    expected_error,
    normalized_uncertainty,
    predicted_labels,
    stabilized,
)
from .atomic import atomic_write_bytes
from .data.subsample import subsample_pool
from .errors import ConfigError
from .seeding import derive_seed

STOPPING_DIR = "stopping"


@dataclass
class StopWhen:
    """Criteria that end a run (any one that fires); every signal is logged whether selected or not.

    Args:
        stabilizing_predictions: stop once the mean Cohen's kappa between successive rounds'
            predictions on the stop set, over the last ``window`` comparisons, is at least
            ``kappa`` (Bloodgood & Vijay-Shanker 2009; their k = 3 and 0.99 are the defaults).
        kappa: agreement threshold of ``stabilizing_predictions``.
        window: successive comparisons averaged by ``stabilizing_predictions``.
        overall_uncertainty: stop once the mean normalised entropy (0..1) of the unlabeled
            stop-set examples is at most this (Zhu et al. 2008, overall-uncertainty).
        max_uncertainty: stop once the largest normalised entropy over the unlabeled pool the
            round scores (the example uncertainty sampling would query) is at most this (Zhu et
            al. 2008, max-confidence); checked after scoring, before selecting.
        expected_error: stop once their mean expected error (``1 - max p``) is at most this.
    """

    stabilizing_predictions: bool = False
    kappa: float = 0.99
    window: int = 3
    overall_uncertainty: float | None = None
    max_uncertainty: float | None = None
    expected_error: float | None = None

    def __post_init__(self) -> None:
        if not -1.0 <= self.kappa <= 1.0:
            raise ConfigError(f"loop.stop_when.kappa must be in [-1, 1], got {self.kappa}")
        if self.window < 1:
            raise ConfigError(f"loop.stop_when.window must be at least 1, got {self.window}")
        for name in ("overall_uncertainty", "max_uncertainty", "expected_error"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"loop.stop_when.{name} must be in [0, 1], got {value}")

    def fired(self, signals: dict[str, Any]) -> list[str]:
        """The selected criteria that the round's ``signals`` satisfy (NaN never satisfies one)."""
        reasons = []
        if self.stabilizing_predictions and _at_least(signals.get("stop_kappa_mean"), self.kappa):
            reasons.append("stabilizing_predictions")
        for name in ("overall_uncertainty", "max_uncertainty", "expected_error"):
            threshold = getattr(self, name)
            if threshold is not None and _at_most(signals.get(f"stop_{name}"), threshold):
                reasons.append(name)
        return reasons


def _at_least(value: Any, threshold: float) -> bool:
    return value is not None and not math.isnan(float(value)) and float(value) >= threshold


def _at_most(value: Any, threshold: float) -> bool:
    return value is not None and not math.isnan(float(value)) and float(value) <= threshold


def draw_stop_set(n_pool: int, size: int, seed: int) -> np.ndarray:
    """Ascending pool indices of the run's stop set: ``size`` rows (the whole pool if smaller), seeded."""
    if size <= 0:
        return np.empty(0, dtype=np.int64)
    return subsample_pool(np.arange(n_pool, dtype=np.int64), size, derive_seed(seed, "stop_set"))


class StopSetHistory:
    """Each round's hard predictions on the stop set, one ``.npy`` file per round under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, round_index: int) -> Path:
        return self.directory / f"round_{round_index:03d}.npy"

    def save(self, round_index: int, predictions: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(predictions), allow_pickle=False)
        atomic_write_bytes(self.path(round_index), buffer.getvalue())

    def load(self, round_index: int) -> np.ndarray | None:
        path = self.path(round_index)
        if not path.exists():
            return None
        return np.load(path, allow_pickle=False)

    def kappas(self, last_round: int, current: np.ndarray) -> list[float]:
        """Kappa of each round 1..``last_round`` with the round before it (NaN where either has no predictions)."""
        series: list[float] = []
        previous = self.load(0) if last_round > 0 else None
        for round_index in range(1, last_round + 1):
            predictions = current if round_index == last_round else self.load(round_index)
            comparable = previous is not None and predictions is not None and previous.shape == predictions.shape
            series.append(cohen_kappa(previous, predictions) if comparable else math.nan)
            previous = predictions
        return series


def stop_set_signals(
    probs: np.ndarray,
    unlabeled: np.ndarray,
    history: StopSetHistory,
    round_index: int,
    *,
    multi_label: bool,
    threshold: float,
    window: int,
) -> dict[str, float]:
    """The stop-set signals of one round (and this round's predictions saved in ``history``).

    ``probs`` (m, C): the round's probabilities on the stop set; ``unlabeled`` (m,) bool:
    which stop-set rows are still unlabeled (overall uncertainty and expected error are
    taken over those; kappa over the whole, fixed stop set). ``stop_max_uncertainty`` is
    not a stop-set signal: see ``pool_max_uncertainty``.
    """
    predictions = predicted_labels(probs, multi_label, threshold)
    history.save(round_index, predictions)
    kappas = history.kappas(round_index, predictions)
    window_mean, _ = stabilized(kappas, window)
    rest = np.asarray(probs)[np.asarray(unlabeled, dtype=bool)]
    uncertainty = normalized_uncertainty(rest, multi_label) if rest.size else np.empty(0)
    errors = expected_error(rest, multi_label) if rest.size else np.empty(0)
    return {
        "stop_kappa": kappas[-1] if kappas else math.nan,
        "stop_kappa_mean": window_mean,
        "stop_overall_uncertainty": float(uncertainty.mean()) if uncertainty.size else math.nan,
        "stop_expected_error": float(errors.mean()) if errors.size else math.nan,
    }


def pool_max_uncertainty(probs: np.ndarray, *, multi_label: bool) -> dict[str, float]:
    """``stop_max_uncertainty``: the largest normalised entropy over the scored unlabeled pool.

    Zhu, Wang & Hovy (2008)'s max-confidence criterion stops when the entropy of the
    example uncertainty sampling selects is below a threshold; that example is the
    pool's most uncertain, so the signal is ``max_x H(p(x)) / ln C`` over the rows
    ``probs`` (n, C) the round scored (multi-label: the mean binary entropy / ln 2 of
    each row, as ``normalized_uncertainty``). NaN for an empty pool.
    """
    rows = np.asarray(probs)
    uncertainty = normalized_uncertainty(rows, multi_label) if rows.size else np.empty(0)
    return {"stop_max_uncertainty": float(uncertainty.max()) if uncertainty.size else math.nan}


def label_balance(targets: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """``labels_<class>`` counts of the labeled set's 0/1 target rows (n, C) and their ``class_balance``."""
    counts = np.asarray(targets).sum(axis=0) if len(targets) else np.zeros(len(names))
    row: dict[str, float] = {f"labels_{name}": int(count) for name, count in zip(names, counts)}
    row["class_balance"] = class_balance(counts)
    return row
