"""Low-budget, cold-start capable geometry strategies: ProbCover and TypiClust.

Both pick representative points of the embedding space without a fine-tuned
model: by default they read ``pretrained_embeddings`` (the frozen encoder, the
role of the papers' self-supervised representation); ``encoder: finetuned`` reads
the current model's ``embeddings`` instead (then they need a trained model, and a
cold-start round falls back to the pretrained encoder). The FAISS work is in
``lit_al.index``, the selection math in ``lit_al.functional.coverage`` and
``lit_al.functional.typicality``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..functional import coverage as Cov
from ..functional import geometry as G
from ..functional import typicality as Typ
from ..index import kmeans_labels, knn_distances, nearest_foreign_distance, radius_neighbors
from ..outputs.catalog import EMBEDDINGS, LABELS, PRETRAINED_EMBEDDINGS
from .base import Selection, Strategy
from .options import check_bool, check_choice, check_float, check_int
from .registry import register_strategy

_ENCODERS = ("pretrained", "finetuned")


class _EncoderStrategy(Strategy):
    """The ``encoder`` option: which embeddings, whether a trained model is needed, the cold-start fallback."""

    predict_labeled = True

    def __init__(self, *, multi_label: bool, encoder: str, normalize: bool) -> None:
        super().__init__(multi_label=multi_label)
        self.encoder = check_choice(self.name, "encoder", encoder, _ENCODERS)
        self.normalize = check_bool(self.name, "normalize", normalize)
        self.output_name = PRETRAINED_EMBEDDINGS if encoder == "pretrained" else EMBEDDINGS
        self.needs = frozenset({self.output_name})
        self.requires_trained_model = encoder == "finetuned"

    def _fallback(self, **options: Any) -> None:
        if self.encoder == "finetuned":
            self.cold_start_fallback = {"name": self.name, **options, "encoder": "pretrained"}

    def _points(self, outputs, labeled: np.ndarray, unlabeled: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Embeddings of L ∪ U (float32, L2-normalised if ``normalize``), the labeled mask and the pool indices, by pool index."""
        rows = np.sort(np.concatenate([labeled, unlabeled]))
        points = np.asarray(outputs[self.output_name][rows], dtype=np.float32)
        if self.normalize:
            points = G.l2_normalize_rows(points)
        return points, np.isin(rows, labeled), rows


@register_strategy("probcover")
class ProbCover(_EncoderStrategy):
    """ProbCover (Yehuda, Dekel, Hacohen & Weinshall 2022, "Active Learning Through a Covering Lens").

    Greedy maximum coverage of δ-balls ``B_δ(x) = {x' : ||x − x'||₂ < δ}`` over the
    embeddings of L ∪ U (``functional.coverage.max_coverage_greedy``): the balls of
    the labeled points count as covered; each pick is the unlabeled point whose
    ball covers the most uncovered points, ties to the lower pool index; once
    everything is covered, the lowest pool indices [R]. The graph comes from an
    exact FAISS range search (``index.radius_neighbors``), O(edges) memory, never
    an n × n matrix.

    δ (option ``delta``): ``None`` (default) chooses it as the paper does [P]: the
    largest δ at which at least ``alpha`` (0.95) of the balls are pure with respect
    to k-means pseudo-labels with k = the number of classes (``labels`` columns; only
    their count is read), computed exactly from each point's distance to the
    nearest other-cluster point (``functional.coverage.purity_radius``). Or give δ.
    The chosen δ is fixed once per run, as the paper and the authors' code fix it once
    per dataset [P, C]: chosen at the first selection, then reused by every later one
    (``run_record``: the loop keeps it in ``state.json``, so a resumed run reuses it too),
    one δ per embedding source (a cold-start round's pretrained fallback has its own).
    The selection's ``scores`` are the picks' coverage gains, ``info["delta"]`` the δ used.

    Options: ``encoder`` ("pretrained" default, cold start; "finetuned": the current
    model's embeddings), ``normalize`` (True: rows L2-normalised, as the authors' code
    loads its self-supervised features [C]), ``delta``, ``alpha``.
    Label-agnostic (multi-label: k = J clusters [R]). δ is too large when the
    graph is dense: memory grows with the number of edges.
    """

    uses_labels = True

    def __init__(
        self,
        *,
        multi_label: bool = False,
        encoder: str = "pretrained",
        normalize: bool = True,
        delta: float | None = None,
        alpha: float = Cov.PURITY_ALPHA,
    ) -> None:
        super().__init__(multi_label=multi_label, encoder=encoder, normalize=normalize)
        self.delta = None if delta is None else check_float(self.name, "delta", delta, minimum=0.0, min_inclusive=False, finite=True)
        self.alpha = check_float(self.name, "alpha", alpha, minimum=0.0, maximum=1.0, min_inclusive=False)
        self._fallback(normalize=normalize, delta=delta, alpha=alpha)
        #: δ chosen by purity at the first selection, per embedding output (see ``run_record``)
        self._chosen_delta: dict[str, float] = {}

    def run_record(self) -> dict[str, Any]:
        return {"delta": dict(self._chosen_delta)} if self._chosen_delta else {}

    def restore_run_record(self, record: Mapping[str, Any]) -> None:
        self._chosen_delta.update({str(k): float(v) for k, v in dict(record.get("delta") or {}).items()})

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        points, is_labeled, rows = self._points(outputs, labeled, unlabeled)
        delta = self.delta if self.delta is not None else self._chosen_delta.get(self.output_name)
        if delta is None:
            pseudo = kmeans_labels(points, int(np.shape(outputs[LABELS])[1]), rng)
            delta = float(Cov.purity_radius(nearest_foreign_distance(points, pseudo), self.alpha))
            self._chosen_delta[self.output_name] = delta
        offsets, neighbors = radius_neighbors(points, delta)
        covered = np.zeros(rows.size, dtype=bool)
        covered[neighbors[np.repeat(is_labeled, np.diff(offsets))]] = True  # the labeled points' balls
        picks, gains = Cov.max_coverage_greedy(offsets, neighbors, ~is_labeled, covered, budget, index=rows)
        return Selection(rows[picks], gains.astype(np.float64), {"delta": float(delta)})


@register_strategy("typiclust")
class TypiClust(_EncoderStrategy):
    """TypiClust (Hacohen, Dekel & Weinshall 2022, "Active Learning on a Budget").

    k-means on the embeddings of L ∪ U into ``min(|L| + B, max_clusters)`` clusters
    (|L| + B [P]; the authors' code caps them at 500 [C]); then, cluster by cluster —
    clusters without labeled points first, the largest first, one pick per cluster
    and cycle, clusters of at most 5 points only after the others [C] — the
    unlabeled point of maximal typicality ``1 / mean_{K-NN} ||x − x_i||`` among the
    cluster's remaining unlabeled points, K = min(20, |cluster| // 2) [P, C]
    (``functional.typicality.typiclust_select``). Ties go to the lower pool index.

    Options: ``encoder`` ("pretrained" default, cold start; "finetuned"),
    ``normalize`` (True: rows L2-normalised, as the authors' code loads its features [C]),
    ``num_neighbors`` (K = 20), ``max_clusters`` (500), ``distance``: "euclidean"
    (default) [P], the paper's equation, ``Typicality(x) = (1/K Σ_{x_i ∈ K-NN(x)} ||x − x_i||₂)⁻¹``;
    "squared" [C], the mean *squared* distance, what the authors' code averages (FAISS's
    squared L2 distances; 0-1 of 30 picks differ in practice), ``n_init`` (1) and
    ``max_iter`` (50) of the FAISS k-means [R] (the code: sklearn ``KMeans``
    defaults up to 50 clusters, ``MiniBatchKMeans`` beyond). Label-agnostic.
    The selection's ``scores`` are the picks' typicalities.
    """

    def __init__(
        self,
        *,
        multi_label: bool = False,
        encoder: str = "pretrained",
        normalize: bool = True,
        num_neighbors: int = Typ.TYPICALITY_NEIGHBORS,
        max_clusters: int = Typ.MAX_CLUSTERS,
        distance: str = "euclidean",
        n_init: int = 1,
        max_iter: int = 50,
    ) -> None:
        super().__init__(multi_label=multi_label, encoder=encoder, normalize=normalize)
        self.num_neighbors = check_int(self.name, "num_neighbors", num_neighbors)
        self.max_clusters = check_int(self.name, "max_clusters", max_clusters)
        self.distance = check_choice(self.name, "distance", distance, ("euclidean", "squared"))
        self.n_init = check_int(self.name, "n_init", n_init)
        self.max_iter = check_int(self.name, "max_iter", max_iter)
        self._fallback(normalize=normalize, num_neighbors=num_neighbors, max_clusters=max_clusters,
                       distance=distance, n_init=n_init, max_iter=max_iter)

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        points, is_labeled, rows = self._points(outputs, labeled, unlabeled)
        k = Typ.typiclust_num_clusters(labeled.size, budget, rows.size, self.max_clusters)
        clusters = kmeans_labels(points, k, rng, n_init=self.n_init, max_iter=self.max_iter)
        power = 2 if self.distance == "squared" else 1

        def mean_knn(positions: np.ndarray, neighbors: int) -> np.ndarray:
            if positions.size < 2:
                return np.zeros(positions.size)
            distances = knn_distances(points[positions], k=neighbors, exclude_self=True).astype(np.float64)
            return (distances**power).mean(axis=1)

        picks, typicality = Typ.typiclust_select(
            clusters, is_labeled, budget, mean_knn, num_neighbors=self.num_neighbors, index=rows
        )
        return Selection(rows[picks], typicality)
