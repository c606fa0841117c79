"""Strategies that train an auxiliary model on embeddings: Perceptron Ensemble and DAL (STRATEGIES.md §1.7, §1.10)."""

from __future__ import annotations

import numpy as np

from ..errors import StrategyError
from ..functional import auxiliary as A
from ..outputs.catalog import EMBEDDINGS, LABELS
from .base import Strategy, top_scored
from .options import check_choice, check_float, check_int, check_optional_int
from .registry import register_strategy


@register_strategy("perceptron_ensemble")
class PerceptronEnsemble(Strategy):
    """Perceptron Ensemble (IBM, Ein-Dor et al. 2020; STRATEGIES.md §1.7).

    Trains ``members`` perceptrons — ``Dropout(dropout)`` on the input (training
    only) then ``Dense(C, softmax)`` (multi-label [R]: ``Dense(J, sigmoid)`` with
    BCE) — on the fine-tuned embeddings of L with their labels, then queries the
    top-k of ``s = -Σ_c p̄_c ln(p̄_c + 1e-10)`` over U, ``p̄`` the members' mean
    probability (multi-label: the summed binary entropy of ``p̄_j``).

    Labels are aligned correctly: IBM's code stacks ``[pos; neg]`` but labels the
    rows ``[0]*|neg| + [1]*|pos|``, mislabeling them whenever ``|pos| ≠ |neg|``;
    this implementation does not reproduce that bug.

    Options (IBM's values as defaults): ``members=10``, ``dropout=0.9``,
    ``lr=1e-4`` (Adam), ``epochs=10``, ``batch_size=50``, ``class_weight="none"``.
    ``class_weight``: ``"none"`` (default) trains unweighted, as IBM's code did:
    it passes Keras ``class_weight={c: N / Y[Y==c].shape[0]}`` with a one-hot ``Y``,
    where both counts are N, so both weights are 1.0; ``"balanced"`` weights each
    example by ``N / N_c`` (what the code appears to intend; multi-label: per
    label, positives and negatives). Labeled rows whose ``labels`` row is NaN are left out of
    training. Deterministic under the seed (torch.Generator from the strategy's rng).
    """

    needs = frozenset({EMBEDDINGS})
    predict_labeled = True
    uses_labels = True
    requires_trained_model = True

    def __init__(
        self,
        *,
        multi_label: bool = False,
        members: int = 10,
        dropout: float = 0.9,
        lr: float = 1e-4,
        epochs: int = 10,
        batch_size: int = 50,
        class_weight: str = "none",
    ) -> None:
        super().__init__(multi_label=multi_label)
        name = "perceptron_ensemble"
        self.members = check_int(name, "members", members)
        self.dropout = check_float(name, "dropout", dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
        self.lr = check_float(name, "lr", lr, minimum=0.0, min_inclusive=False)
        self.epochs = check_int(name, "epochs", epochs)
        self.batch_size = check_int(name, "batch_size", batch_size)
        self.class_weight = check_choice(name, "class_weight", class_weight, A.CLASS_WEIGHTS)

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        labels = np.asarray(outputs[LABELS][labeled], dtype=np.float64)
        known = ~np.isnan(labels).any(axis=1)
        if not known.any():
            raise StrategyError("perceptron_ensemble needs at least one labeled example with its label")
        embeddings = outputs[EMBEDDINGS]
        weight, bias = A.train_perceptron_ensemble(
            np.asarray(embeddings[labeled[known]], dtype=np.float32),
            labels[known],
            generator=A.torch_generator(rng),
            multi_label=self.multi_label,
            members=self.members,
            dropout=self.dropout,
            lr=self.lr,
            epochs=self.epochs,
            batch_size=self.batch_size,
            class_weight=self.class_weight,
        )
        mean_probs = A.perceptron_ensemble_mean_probs(
            weight, bias, np.asarray(embeddings[unlabeled], dtype=np.float32), multi_label=self.multi_label
        )
        scores = A.perceptron_ensemble_entropy(mean_probs, multi_label=self.multi_label)
        return top_scored(scores, unlabeled, budget)


@register_strategy("dal")
class DiscriminativeActiveLearning(Strategy):
    """Discriminative Active Learning (Gissin & Shalev-Shwartz 2019, IBM's protocol; STRATEGIES.md §1.10).

    ``sub_batches`` mini-queries; before each one a fresh MLP discriminator
    (``Dense(w, ReLU) × 3 → Dense(2, softmax)``) learns labeled (L plus the points
    already queried) versus a fresh random candidate subset of U of size
    ``min(candidate_ratio·|L'|, |U|)``; the mini-query is the top-m candidates by
    ``P(unlabeled | e)``. Label-agnostic (single- and multi-label alike).

    Options (IBM's values as defaults): ``sub_batches=5`` (m = k // 5, the last
    takes the remainder; k < 5 gives k one-point mini-queries), ``candidate_ratio=10``,
    ``hidden_size=None`` (= the embedding dimension), ``lr=1e-4`` (Adam),
    ``batch_size=100``, ``max_epochs=10``, ``stop_accuracy=0.98`` (early stop at
    the end of the first epoch whose training accuracy exceeds it),
    ``class_weight="none"``: unweighted, as IBM's (and Gissin's) code trained: its
    Keras ``class_weight={c: N / Y[Y==c].shape[0]}`` counts a one-hot ``Y``, so both
    counts are N and both weights 1.0; ``"balanced"`` weights labeled and unlabeled
    examples by ``N / N_c`` (what the code appears to intend). Needs at least one
    labeled example.
    """

    needs = frozenset({EMBEDDINGS})
    predict_labeled = True
    requires_trained_model = True

    def __init__(
        self,
        *,
        multi_label: bool = False,
        sub_batches: int = 5,
        candidate_ratio: float = 10.0,
        hidden_size: int | None = None,
        lr: float = 1e-4,
        batch_size: int = 100,
        max_epochs: int = 10,
        stop_accuracy: float = 0.98,
        class_weight: str = "none",
    ) -> None:
        super().__init__(multi_label=multi_label)
        name = "dal"
        self.sub_batches = check_int(name, "sub_batches", sub_batches)
        self.candidate_ratio = check_float(name, "candidate_ratio", candidate_ratio, minimum=0.0, min_inclusive=False)
        self.hidden_size = check_optional_int(name, "hidden_size", hidden_size)
        self.lr = check_float(name, "lr", lr, minimum=0.0, min_inclusive=False)
        self.batch_size = check_int(name, "batch_size", batch_size)
        self.max_epochs = check_int(name, "max_epochs", max_epochs)
        self.stop_accuracy = check_float(name, "stop_accuracy", stop_accuracy, minimum=0.0, maximum=1.0)
        self.class_weight = check_choice(name, "class_weight", class_weight, A.CLASS_WEIGHTS)

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        if labeled.size == 0:
            raise StrategyError("dal needs at least one labeled example (its candidate set is candidate_ratio·|L|)")
        embeddings = outputs[EMBEDDINGS]
        positions = A.dal_select(
            np.asarray(embeddings[labeled], dtype=np.float32),
            np.asarray(embeddings[unlabeled], dtype=np.float32),
            budget,
            rng,
            index=unlabeled,
            sub_batches=self.sub_batches,
            candidate_ratio=self.candidate_ratio,
            hidden_size=self.hidden_size,
            lr=self.lr,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            stop_accuracy=self.stop_accuracy,
            class_weight=self.class_weight,
        )
        return unlabeled[positions]
