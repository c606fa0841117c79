"""MC-dropout (Bayesian) strategies: MC Dropout, BALD, BatchBALD, BEAL (STRATEGIES.md §1.5, §1.6, §1.15).

All but ``beal_deterministic`` need ``mc_probs`` (T, n, C): T stochastic forward passes
with dropout on. Two options say how ``predict_step`` produces them and are passed
through ``prediction_options()`` as ``{"mc_passes": T, "mc_scope": scope}``:

- ``mc_passes`` (T): the number of passes.
- ``mc_scope``: ``"full"`` runs the T passes through the whole fine-tuned model with every
  dropout layer on (the papers': IBM's Table 2 timings are exactly T x inference; BEAL re-runs
  BERT T = 100 times); ``"head"`` runs the encoder once in eval mode and samples only the
  classification head's dropout T times over the cached representation, a documented fast
  path [R] that needs dropout in the head (with none, all passes coincide and the scores are
  flat).

The selection uses the T the outputs actually carry.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import StrategyError
from ..functional import bayesian as Bay
from ..outputs.catalog import MC_PROBS, MC_SCOPES, PROBS
from .base import Selection, Strategy, top_scored
from .options import check_choice, check_float, check_int, check_optional_int
from .registry import register_strategy



def _check_mc_options(name: str, mc_passes: int, mc_scope: str, min_passes: int) -> tuple[int, str]:
    """Validate the two MC-dropout options every MC strategy takes; ``min_passes`` is its smallest useful T."""
    return check_int(name, "mc_passes", mc_passes, min_passes), check_choice(name, "mc_scope", mc_scope, MC_SCOPES)


class _MCDropoutStrategy(Strategy):
    """Common base: needs ``mc_probs``, passes ``mc_passes``/``mc_scope`` to the model."""

    needs = frozenset({MC_PROBS})
    requires_trained_model = True
    mc_passes: int
    mc_scope: str

    def prediction_options(self) -> dict[str, Any]:
        return {"mc_passes": self.mc_passes, "mc_scope": self.mc_scope}

    @staticmethod
    def _pool_samples(outputs: Mapping[str, np.ndarray], unlabeled: np.ndarray) -> np.ndarray:
        return np.asarray(outputs[MC_PROBS])[:, unlabeled]


class _MCScore(_MCDropoutStrategy):
    """Top-k (or bottom-k) of a per-example score of the MC samples."""

    largest = True

    def score(self, mc_probs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        samples = np.asarray(outputs[MC_PROBS])
        if 2 * unlabeled.size >= samples.shape[1]:
            # scoring every row (rows of labeled examples may be NaN) is cheaper than copying most of the array
            with np.errstate(invalid="ignore"):
                scores = self.score(samples)[unlabeled]
        else:
            scores = self.score(samples[:, unlabeled])
        return top_scored(scores, unlabeled, budget, largest=self.largest)


@register_strategy("mc_dropout")
class MCDropout(_MCScore):
    """IBM's "Dropout": max entropy of the MC-averaged posterior (Ein-Dor et al. 2020; §1.5).

    Score ``H(p̄)`` with ``p̄ = (1/T) sum_t p^t`` (the mean of probabilities, not of logits);
    multi-label ``sum_j H_b(p̄_j)`` [R]; top-k. Options: ``mc_passes`` (T = 10 [P] IBM),
    ``mc_scope`` (``"full"``, the paper's; ``"head"`` the fast path, see the module docstring).
    """

    def __init__(self, *, multi_label: bool = False, mc_passes: int = 10, mc_scope: str = "full") -> None:
        super().__init__(multi_label=multi_label)
        self.mc_passes, self.mc_scope = _check_mc_options("mc_dropout", mc_passes, mc_scope, 1)

    def score(self, mc_probs):
        return Bay.mc_entropy(mc_probs, self.multi_label)


@register_strategy("bald")
class BALD(_MCScore):
    """BALD mutual information ``H(p̄) - (1/T) sum_t H(p^t)`` (Houlsby et al. 2011; Gal et al. 2017; §1.6).

    Multi-label (BEAL's baseline): ``sum_j [H_b(p̄_j) - (1/T) sum_t H_b(p_j^t)]`` [R]; top-k.
    Options: ``mc_passes`` (default 10, as the badge code's ``n_drop``; BEAL used T = 100 [P]),
    ``mc_scope`` (``"full"`` default). With T = 1 the score is identically 0, so T >= 2.
    """

    def __init__(self, *, multi_label: bool = False, mc_passes: int = 10, mc_scope: str = "full") -> None:
        super().__init__(multi_label=multi_label)
        self.mc_passes, self.mc_scope = _check_mc_options("bald", mc_passes, mc_scope, 2)

    def score(self, mc_probs):
        return Bay.bald(mc_probs, self.multi_label)


@register_strategy("batch_bald")
class BatchBALD(_MCDropoutStrategy):
    """Greedy BatchBALD (Kirsch, van Amersfoort & Gal 2019): the batch maximising ``I(y_1..y_k; w)``.

    Picks are in greedy order; the selection's ``scores`` hold each pick's marginal gain (its
    conditional mutual information given the earlier picks of its sub-batch) and
    ``info["result"]`` the whole ``BatchBALDResult`` (positions along the unlabeled indices
    passed to ``select``).
    Single-label only (refuses multi-label). See ``lit_al.functional.bayesian.batch_bald`` for the estimator.

    Options:

    - ``mc_passes`` (default 20 [R]): ``I(y_A; w) <= ln T``, so T caps how much joint
      information, hence batch diversity, BatchBALD can express; at T = 10 the batch score
      saturates at ln 10 ≈ 2.3 nats within a handful of picks and later picks are decided by
      Monte-Carlo noise. The authors ran T between 10 and 100; 20 doubles IBM's/badge's 10
      (ceiling ln 20 ≈ 3.0 nats) at twice the inference cost, and keeps selection cost
      (which grows with T² per candidate and step) at seconds for n = 10^5.
    - ``mc_scope`` (default ``"full"``). BatchBALD needs "consistent" MC dropout: pass t must
      use the same dropout masks for every example.
    - ``num_samples`` (M, default 1000): sampled label configurations once exact enumeration
      stops (the authors' code used about 40,000, redrawn every step); must be >= T.
    - ``max_exact_configs`` (default None = ``num_samples``): enumerate the batch's label
      configurations exactly while there are at most this many.
    - ``chunk_size`` (default 2^21): the most (configuration x candidate x class) entries held
      at once (transient memory ≈ 12 bytes each).
    - ``saturation`` (default ``"restart"`` [R]): what to do once no candidate can add
      ``saturation_gain`` nats (default 1e-5) because the batch's labels already single out one
      of the T passes (``I(y_A; w)`` has reached about ``ln T``): ``"restart"`` starts a new
      greedy sub-batch over the candidates left, ``"bald"`` fills with the highest BALD,
      ``"greedy"`` keeps maximising gains that are 0 up to float rounding (the reference; tens
      of seconds at n = 10^5). Every completion of a saturated batch scores within
      ``saturation_gain`` per point of the greedy one, so this only breaks ties.
    """

    supports_multi_label = False

    def __init__(
        self,
        *,
        multi_label: bool = False,
        mc_passes: int = 20,
        mc_scope: str = "full",
        num_samples: int = Bay.BATCHBALD_NUM_SAMPLES,
        max_exact_configs: int | None = None,
        chunk_size: int = Bay.BATCHBALD_CHUNK_SIZE,
        saturation: str = "restart",
        saturation_gain: float = Bay.BATCHBALD_SATURATION_GAIN,
    ) -> None:
        super().__init__(multi_label=multi_label)
        self.mc_passes, self.mc_scope = _check_mc_options("batch_bald", mc_passes, mc_scope, 2)
        self.num_samples = check_int("batch_bald", "num_samples", num_samples)
        self.chunk_size = check_int("batch_bald", "chunk_size", chunk_size)
        if self.num_samples < self.mc_passes:
            raise StrategyError(f"batch_bald: num_samples ({num_samples}) must be >= mc_passes ({self.mc_passes})")
        self.max_exact_configs = check_optional_int("batch_bald", "max_exact_configs", max_exact_configs)
        self.saturation = check_choice("batch_bald", "saturation", saturation, Bay.BATCHBALD_SATURATION_RULES)
        self.saturation_gain = check_float("batch_bald", "saturation_gain", saturation_gain, minimum=0.0, finite=True)

    def prediction_options(self) -> dict[str, Any]:
        # The joint entropy over a batch needs pass t to be one function draw shared by
        # every example ("consistent MC dropout", Kirsch et al. 2019), not per-example masks.
        return {**super().prediction_options(), "mc_consistent": True}

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        samples = self._pool_samples(outputs, unlabeled)
        try:
            result = Bay.batch_bald(
                samples,
                budget,
                rng,
                num_samples=self.num_samples,
                max_exact_configs=self.max_exact_configs,
                chunk_size=self.chunk_size,
                saturation=self.saturation,
                saturation_gain=self.saturation_gain,
                index=unlabeled,
            )
        except ValueError as exc:
            raise StrategyError(f"batch_bald: {exc}") from None
        # saturated steps, sub-batches, exactness: see BatchBALDResult
        return Selection(unlabeled[result.indices], result.gains, {"result": result})


@register_strategy("beal")
class BEAL(_MCScore):
    """BEAL: the lowest Bayesian expected confidence EC (Wang et al. 2024, Eq. 2; §1.15).

    ``EC(x) = sum_j r̄_j / π̂(j)`` with ``r̄_j = mean_t (2^{Y_j^t} - 1)`` and ``π̂`` the ranks of
    ``r̄`` (descending, 1-based); the b lowest are queried. Multi-label is BEAL's home (sigmoid
    passes); single-label uses the softmax passes, ``EC = sum_r R(p_(r)) / r`` [R].
    Options: ``mc_passes`` (T = 100 [P]), ``mc_scope`` (``"full"``: dropout in every layer [R];
    the paper says only "utilized dropout").
    """

    largest = False

    def __init__(self, *, multi_label: bool = False, mc_passes: int = 100, mc_scope: str = "full") -> None:
        super().__init__(multi_label=multi_label)
        self.mc_passes, self.mc_scope = _check_mc_options("beal", mc_passes, mc_scope, 1)

    def score(self, mc_probs):
        return Bay.beal_expected_confidence(mc_probs)


@register_strategy("beal_deterministic")
class BEALDeterministic(Strategy):
    """Deterministic BEAL, the paper's ablation: EC of the plain prediction (T = 1, dropout off; §1.15).

    ``EC(x) = sum_r R(p_(r)) / r`` on ``probs`` (sigmoid, or softmax for single-label [R]),
    treated as a single pass; the lowest EC first. No MC passes.
    """

    needs = frozenset({PROBS})
    requires_trained_model = True

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        probs = np.asarray(outputs[PROBS])[unlabeled]
        scores = Bay.beal_expected_confidence(probs[None])
        return top_scored(scores, unlabeled, budget, largest=False)
