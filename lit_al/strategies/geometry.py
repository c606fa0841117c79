"""Embedding-geometry strategies: Core-Set, (FT-)BERT-KM, ALPS, CAL, density-weighted uncertainty.

STRATEGIES.md §0 (KCENTER, KMEANS_NEAREST), §1.9, §1.12, §1.13, §2.2. The FAISS
work is in ``lit_al.index``, the score math in ``lit_al.functional.geometry``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import StrategyError
from ..functional import geometry as G
from ..functional import uncertainty as U
from ..index import KMEANS_INIT_METHODS, KNN_INDEXES, kcenter_greedy, kmeans_nearest, knn_density, nearest_neighbors
from ..outputs.catalog import EMBEDDINGS, PRETRAINED_EMBEDDINGS, PROBS, SURPRISAL
from ..rows import RowSource, take_rows
from .base import Selection, Strategy, top_scored
from .options import check_bool, check_choice, check_float, check_int, check_optional_int
from .registry import register_strategy

#: ALPS's output: name, shape and meaning (for the ``predict_step`` side).
#:
#: ``surprisal``: float array (n, ℓ), ℓ = ``max_length`` (prediction option, default 128),
#: positions aligned to the example's input ids padded/truncated to ℓ tokens exactly as
#: the classifier tokenizes them (with [CLS]/[SEP]). For each example:
#:
#: 1. Run the pre-trained masked-LM ``mlm_model`` (prediction option; a hub name or local
#:    path for ``AutoModelForMaskedLM``; NOT the fine-tuned classifier) on the UNMASKED ids.
#: 2. Draw ``m_i ~ Bernoulli(token_rate)`` (default 0.15) independently per position;
#:    special tokens ([CLS], [SEP], ...) and padding have probability 0 (HF
#:    ``DataCollatorForLanguageModeling`` logic, not "exactly 15 % of the tokens").
#:    Draw from a generator seeded by the request seed and the example's pool index, so
#:    the result does not depend on batching or on the number of processes.
#: 3. ``surprisal[i] = −ln softmax(MLM_logits_i)[w_i]`` (natural log, ``w_i`` the input
#:    token at i) where ``m_i = 1``, and 0 elsewhere (cross-entropy with
#:    ``ignore_index=-100``, ``reduction='none'``). Only the sampled positions need the
#:    V-sized MLM head.
#:
#: Values are >= 0 and about 85 % of the entries are 0; no normalisation (the strategy
#: L2-normalises each row itself). Needed on unlabeled rows only.

_INIT_CHOICES = tuple(sorted(KMEANS_INIT_METHODS))
_FILL_CHOICES = ("next_nearest", "random")

_INDEX_DOC = """
    ``index`` (``"auto"``): the neighbour search (``lit_al.index.knn_search``):
    ``"exact"`` (FAISS ``IndexFlatL2``), ``"hnsw"`` (FAISS HNSW graph), ``"ivf"``
    (FAISS inverted file, k-means cells seeded from the strategy's seed), or
    ``"auto"``: exact while the queries or the searched rows number at most
    ``index.EXACT_MAX_ROWS`` (20,000), IVF beyond. Approximate searches are
    deterministic; their recall@K against exact is tested to be at least 0.9 on
    clustered data (4,000 rows) and measured by ``scripts/bench_scale.py`` (IVF:
    0.969 at 2×10^5 rows, 0.815 at 10^6; docs/benchmarks/).
"""


def _index_seed(index: str, rng: np.random.Generator) -> int:
    """The seed of an approximate index, drawn from the strategy's generator (0 for the exact search, which needs none)."""
    return 0 if index == "exact" else int(rng.integers(0, 2**31 - 1))


def _rows(outputs: Mapping[str, np.ndarray], name: str, rows: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """This call's own copy of ``outputs[name]`` at ``rows`` (``rows.take_rows``: no second pool-sized copy held)."""
    return take_rows(outputs[name], rows, dtype)


# ------------------------------------------------------------------ Core-Set
@register_strategy("coreset")
class CoreSet(Strategy):
    """Core-Set: greedy k-center over the embeddings (Sener & Savarese 2018; IBM, §1.9).

    ``index.kcenter_greedy(E_U, E_L, k)``: every labeled row is an initial center
    (in IBM's imbalanced scenarios that includes the weakly-labeled negatives, which
    are simply part of ``labeled``); each pick is the unlabeled point farthest, in
    Euclidean distance, from its nearest center. With no labeled rows the first pick
    is uniform at random [R].

    Options: ``normalize`` (default False): L2-normalise the embeddings first
    (cosine geometry; the papers use raw Euclidean). Label-agnostic: single- and
    multi-label alike. The greedy variant is the one IBM's paper used [P].
    """

    needs = frozenset({EMBEDDINGS})
    predict_labeled = True
    requires_trained_model = True

    def __init__(self, *, multi_label: bool = False, normalize: bool = False) -> None:
        super().__init__(multi_label=multi_label)
        self.normalize = check_bool("coreset", "normalize", normalize)

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        candidates = _rows(outputs, EMBEDDINGS, unlabeled)
        centers = _rows(outputs, EMBEDDINGS, labeled) if labeled.size else None
        positions, radius = kcenter_greedy(
            candidates, centers, budget, rng, normalize=self.normalize, return_distances=True
        )
        return Selection(unlabeled[positions], radius)


# ------------------------------------------------------------------ k-means family
class _KMeansNearest(Strategy):
    """Shared k-means options and the KMEANS_NEAREST call over the unlabeled rows (§0)."""

    def __init__(
        self,
        *,
        multi_label: bool,
        n_init: int,
        max_iter: int,
        init: str,
        early_stop_threshold: float,
        max_points_per_centroid: int | None,
        duplicate_fill: str,
    ) -> None:
        super().__init__(multi_label=multi_label)
        name = self.name or type(self).__name__
        self.n_init = check_int(name, "n_init", n_init)
        self.max_iter = check_int(name, "max_iter", max_iter)
        self.init = check_choice(name, "init", init, _INIT_CHOICES)
        self.early_stop_threshold = check_float(
            name, "early_stop_threshold", early_stop_threshold, minimum=0.0, maximum=1.0, coerce=True
        )
        self.max_points_per_centroid = check_optional_int(name, "max_points_per_centroid", max_points_per_centroid)
        self.duplicate_fill = check_choice(name, "duplicate_fill", duplicate_fill, _FILL_CHOICES)

    def kmeans_options(self) -> dict[str, Any]:
        return {
            "n_init": self.n_init,
            "max_iter": self.max_iter,
            "init": self.init,
            "early_stop_threshold": self.early_stop_threshold,
            "max_points_per_centroid": self.max_points_per_centroid,
            "duplicate_fill": self.duplicate_fill,
        }

    def _cluster(self, vectors: np.ndarray, unlabeled: np.ndarray, budget: int, rng: np.random.Generator) -> np.ndarray:
        """k-means over ``vectors``, this call's own float32 copy (``_rows``), normalised in place."""
        positions = kmeans_nearest(G.l2_normalize_rows(vectors, out=vectors), budget, rng, **self.kmeans_options())
        return unlabeled[positions]


_KMEANS_DOC_OPTIONS = """
    k-means options (``index.kmeans_nearest``): ``n_init`` (1 run) and ``max_iter``
    (10 Lloyd iterations) by default — the ALPS paper's cost O(t·k·n·ℓ) with t = 10 [P]
    (STRATEGIES.md §5 item 4 lists this ambiguity). The authors' code ran sklearn's
    ``KMeans`` with its defaults [C]: set ``n_init: 10, max_iter: 300`` to reproduce it
    (about 50x slower at n = 10^5). ``init`` ("k-means++" default, FAISS's D² sampling; sklearn's is the
    greedy variant; or "random", "afk-mc2"), ``early_stop_threshold`` (0.0: iterate
    until the objective stops changing; FAISS's relative-change threshold otherwise),
    ``max_points_per_centroid`` (None: cluster every point; an integer enables FAISS
    subsampling), ``duplicate_fill`` ("next_nearest" default, deterministic greedy
    matching [R]; "random": the ALPS code's uniformly random fill [C]) for centroids
    that share a nearest point.
"""


@register_strategy("kmeans")
class KMeansEmbedding(_KMeansNearest):
    """BERT-KM / FT-BERT-KM: k-means on L2-normalised embeddings, nearest point per centroid (ALPS baselines, §1.12).

    ``KMEANS_NEAREST(L2norm(h(x)) for x ∈ U, k)``; clustering uses the unlabeled rows only.

    - ``encoder="finetuned"`` (default, FT-BERT-KM): ``h`` from the model fine-tuned
      on the current L (output ``embeddings``); needs a trained model, and its
      cold-start round falls back to BERT-KM (``cold_start_fallback``) [P, C].
    - ``encoder="pretrained"`` (BERT-KM, cold start): ``h`` from the frozen
      pre-trained encoder (output ``pretrained_embeddings``).

    ``needs`` and ``requires_trained_model`` therefore depend on ``encoder`` and are
    instance attributes. Label-agnostic: single- and multi-label alike.
    """

    needs = frozenset({EMBEDDINGS})
    requires_trained_model = True

    def __init__(
        self,
        *,
        multi_label: bool = False,
        encoder: str = "finetuned",
        n_init: int = 1,
        max_iter: int = 10,
        init: str = "k-means++",
        early_stop_threshold: float = 0.0,
        max_points_per_centroid: int | None = None,
        duplicate_fill: str = "next_nearest",
    ) -> None:
        super().__init__(
            multi_label=multi_label,
            n_init=n_init,
            max_iter=max_iter,
            init=init,
            early_stop_threshold=early_stop_threshold,
            max_points_per_centroid=max_points_per_centroid,
            duplicate_fill=duplicate_fill,
        )
        self.encoder = check_choice("kmeans", "encoder", encoder, ("finetuned", "pretrained"))
        self.output_name = EMBEDDINGS if encoder == "finetuned" else PRETRAINED_EMBEDDINGS
        self.needs = frozenset({self.output_name})
        self.requires_trained_model = encoder == "finetuned"
        self.cold_start_fallback = (
            {"name": "kmeans", "encoder": "pretrained", **self.kmeans_options()}
            if encoder == "finetuned"
            else None
        )

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        return self._cluster(_rows(outputs, self.output_name, unlabeled), unlabeled, budget, rng)


@register_strategy("alps")
class ALPS(_KMeansNearest):
    """ALPS selection: k-means on L2-normalised MLM surprisal embeddings (Yuan et al. 2020, §1.13).

    ``KMEANS_NEAREST({s_x / max(||s_x||₂, 1e-12) : x ∈ U}, k)``: a zero surprisal row
    (very short input, nothing sampled) stays zero. The clustering uses the
    unlabeled rows only. No fine-tuned model is involved (cold-start capable).

    Needs the output ``surprisal`` (n, ℓ); see the module constant ``SURPRISAL`` for
    its exact definition. Prediction options passed to its computer:

    - ``mlm_model``: name or path of the pre-trained masked LM (BERT; SciBERT for
      PubMed in the paper). Required to compute the output; ``None`` is accepted only
      for array-API use where ``surprisal`` is supplied directly.
    - ``token_rate`` (0.15): Bernoulli rate of the sampled positions (ablations: 0.1, 0.2, 1.0).
    - ``max_length`` (128): ℓ, the padded/truncated input length.

    Label-agnostic: single- and multi-label alike.
    """

    needs = frozenset({SURPRISAL})
    requires_trained_model = False

    def __init__(
        self,
        *,
        multi_label: bool = False,
        mlm_model: str | None = None,
        token_rate: float = 0.15,
        max_length: int = 128,
        n_init: int = 1,
        max_iter: int = 10,
        init: str = "k-means++",
        early_stop_threshold: float = 0.0,
        max_points_per_centroid: int | None = None,
        duplicate_fill: str = "next_nearest",
    ) -> None:
        super().__init__(
            multi_label=multi_label,
            n_init=n_init,
            max_iter=max_iter,
            init=init,
            early_stop_threshold=early_stop_threshold,
            max_points_per_centroid=max_points_per_centroid,
            duplicate_fill=duplicate_fill,
        )
        if mlm_model is not None and (not isinstance(mlm_model, str) or not mlm_model):
            raise StrategyError(f"alps: mlm_model must be a model name or path, got {mlm_model!r}")
        self.mlm_model = mlm_model
        self.token_rate = check_float(
            "alps", "token_rate", token_rate, minimum=0.0, maximum=1.0, min_inclusive=False, coerce=True
        )
        self.max_length = check_int("alps", "max_length", max_length, minimum=3)

    def prediction_options(self) -> dict[str, Any]:
        if self.mlm_model is None:
            raise StrategyError("alps: option mlm_model (a masked-LM name or path) is required to compute surprisal")
        return {"mlm_model": self.mlm_model, "token_rate": self.token_rate, "max_length": self.max_length}

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        return self._cluster(_rows(outputs, SURPRISAL, unlabeled), unlabeled, budget, rng)


# the options text is shared; a class docstring must be a literal, so append it here.
KMeansEmbedding.__doc__ = (KMeansEmbedding.__doc__ or "") + _KMEANS_DOC_OPTIONS
ALPS.__doc__ = (ALPS.__doc__ or "") + _KMEANS_DOC_OPTIONS


# ------------------------------------------------------------------ CAL
@register_strategy("cal")
class CAL(Strategy):
    """CAL, contrastive active learning (Margatina et al. 2021, EMNLP).

    For each unlabeled x, its K nearest labeled neighbours in the fine-tuned
    model's embedding space (``embeddings``, Euclidean, exact FAISS search) and
    ``s(x) = (1/K) Σ_j KL(p(y|x_j^l) || p(y|x))`` with the model's predictions on the
    neighbours (``functional.geometry.contrastive_kl``); top-k by s. With fewer than
    K labeled examples all of them are the neighbours.

    Options: ``num_neighbors`` (K = 10, the paper's default), ``index`` (below).
    Multi-label: the sum over labels of Bernoulli KLs [R]. Needs at least one labeled
    example.
    """

    needs = frozenset({EMBEDDINGS, PROBS})
    predict_labeled = True
    requires_trained_model = True

    def __init__(self, *, multi_label: bool = False, num_neighbors: int = 10, index: str = "auto") -> None:
        super().__init__(multi_label=multi_label)
        self.num_neighbors = check_int("cal", "num_neighbors", num_neighbors)
        self.index = check_choice("cal", "index", index, KNN_INDEXES)

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        if labeled.size == 0:
            raise StrategyError("cal needs at least one labeled example (its neighbours are labeled examples)")
        _, neighbours = nearest_neighbors(
            _rows(outputs, EMBEDDINGS, labeled),
            _rows(outputs, EMBEDDINGS, unlabeled),
            self.num_neighbors,
            method=self.index,
            seed=_index_seed(self.index, rng),
        )
        scores = G.contrastive_kl_of_neighbors(
            _rows(outputs, PROBS, unlabeled, np.float64),
            _rows(outputs, PROBS, labeled, np.float64),
            neighbours,
            multi_label=self.multi_label,
        )
        return top_scored(scores, unlabeled, budget)


# ------------------------------------------------------------------ information density
_UNCERTAINTIES = ("entropy", "least_confidence", "margin")


@register_strategy("density_weighted")
class DensityWeighted(Strategy):
    """Information density: uncertainty weighted by K-NN density (Settles & Craven 2008).

    ``s(x) = u(x) · density(x)^β``, ``density(x) = 1 / (ε + KNN(x))`` with ``KNN(x)`` the
    mean Euclidean distance from ``h(x)`` (``embeddings``) to its K nearest neighbours
    within the unlabeled pool, itself excluded (``index.knn_density``, §2.2),
    ``ε = 1e-12``. This K-NN density is this library's choice [R] (the paper averages
    cosine similarity over the whole pool); see ``functional.geometry.information_density``.

    ``u(x)`` by option ``uncertainty``:

    - ``"entropy"`` (default): ``H(p)``; multi-label ``Σ_j H_b(p_j)``.
    - ``"least_confidence"``: ``1 − max_c p_c``; multi-label ``mean_j (1 − max(p_j, 1 − p_j))``.
    - ``"margin"``: ``1 − (p_(1) − p_(2))`` so that higher = more uncertain;
      multi-label ``1 − min_j |2 p_j − 1|``.

    Options: ``num_neighbors`` (K = 10), ``beta`` (β = 1.0; 0 = plain uncertainty),
    ``index`` (below; the exact K-NN over the pool is O(|U|²·d): 88 s at |U| = 10^5).
    """

    needs = frozenset({PROBS, EMBEDDINGS})
    requires_trained_model = True

    def __init__(
        self,
        *,
        multi_label: bool = False,
        uncertainty: str = "entropy",
        num_neighbors: int = 10,
        beta: float = 1.0,
        index: str = "auto",
    ) -> None:
        super().__init__(multi_label=multi_label)
        self.uncertainty = check_choice("density_weighted", "uncertainty", uncertainty, _UNCERTAINTIES)
        self.num_neighbors = check_int("density_weighted", "num_neighbors", num_neighbors)
        self.beta = check_float("density_weighted", "beta", beta, finite=True, coerce=True)
        self.index = check_choice("density_weighted", "index", index, KNN_INDEXES)

    def uncertainty_scores(self, probs: np.ndarray) -> np.ndarray:
        if self.uncertainty == "entropy":
            return U.multilabel_entropy(probs) if self.multi_label else U.entropy(probs)
        if self.uncertainty == "least_confidence":
            return U.multilabel_least_confidence(probs) if self.multi_label else U.least_confidence(probs)
        return 1.0 - (U.multilabel_margin(probs) if self.multi_label else U.margin(probs))

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        probs = _rows(outputs, PROBS, unlabeled, np.float64)
        distance = knn_density(
            RowSource(outputs[EMBEDDINGS], unlabeled),
            self.num_neighbors,
            method=self.index,
            seed=_index_seed(self.index, rng),
        )
        scores = G.information_density(self.uncertainty_scores(probs), distance, beta=self.beta)
        return top_scored(scores, unlabeled, budget)


CAL.__doc__ = (CAL.__doc__ or "") + _INDEX_DOC
DensityWeighted.__doc__ = (DensityWeighted.__doc__ or "") + _INDEX_DOC
