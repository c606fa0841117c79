"""TypiClust's selection: the most typical point of the largest uncovered clusters.

Hacohen, Dekel & Weinshall 2022, "Active Learning on a Budget: Opposite
Strategies Suit High and Low Budgets" (ICML). Typicality is the inverse mean
distance to the K nearest neighbours::

    Typicality(x) = ( (1/K) Σ_{x_i ∈ K-NN(x)} ||x − x_i||₂ )^{-1}

The clustering and the neighbour searches are FAISS work (``lit_al.index``), passed
in: the cluster numbers as an array, the K-NN distances as a callable.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: K of the typicality [P, C].
TYPICALITY_NEIGHBORS = 20
#: Clusters of at most this many points are skipped [C] (``MIN_CLUSTER_SIZE``).
MIN_CLUSTER_SIZE = 5
#: The authors' cap on the number of clusters [C] (``MAX_NUM_CLUSTERS``).
MAX_CLUSTERS = 500
#: The constant of the authors' ``1 / (mean distance + 1e-5)`` [C] (order-preserving; only the reported score).
TYPICALITY_EPS = 1e-5

#: ``mean_knn(positions, K)``: each position's mean distance to its K nearest neighbours among ``positions``.
MeanKnn = Callable[[np.ndarray, int], np.ndarray]


def typiclust_num_clusters(n_labeled: int, budget: int, n_points: int, max_clusters: int = MAX_CLUSTERS) -> int:
    """``min(|L| + B, max_clusters, n)``: |L| + B clusters [P], capped at 500 in the authors' code [C]."""
    return max(1, min(int(n_labeled) + int(budget), int(max_clusters), int(n_points)))


def cluster_order(clusters: np.ndarray, labeled: np.ndarray, min_cluster_size: int = MIN_CLUSTER_SIZE) -> list[np.ndarray]:
    """The clusters to visit, as two groups of cluster numbers, each in visiting order.

    First the clusters with more than ``min_cluster_size`` points [C], ordered by the
    number of labeled points they hold (uncovered, 0, first [P]), then by size,
    largest first [P], then by cluster number; then the small clusters in the same
    order [R] (the authors' code never visits them and stops once its big clusters
    run out of points; here they serve only then). Sizes count labeled points too [C].
    """
    clusters = np.asarray(clusters, dtype=np.int64)
    labeled = np.asarray(labeled, dtype=bool)
    ids, sizes = np.unique(clusters, return_counts=True)
    held = np.bincount(clusters[labeled], minlength=int(ids.max()) + 1)[ids]
    order = np.lexsort((ids, -sizes, held))
    ids, sizes = ids[order], sizes[order]
    return [ids[sizes > min_cluster_size], ids[sizes <= min_cluster_size]]


def typiclust_select(
    clusters: np.ndarray,
    labeled: np.ndarray,
    k: int,
    mean_knn: MeanKnn,
    *,
    num_neighbors: int = TYPICALITY_NEIGHBORS,
    min_cluster_size: int = MIN_CLUSTER_SIZE,
    index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """TypiClust (Hacohen et al. 2022, Algorithm 1 with the authors' code's details).

    ``clusters`` (m,): the k-means cluster of every point, labeled and unlabeled
    (|L| + B clusters, see :func:`typiclust_num_clusters`); ``labeled`` (m,) bool.
    Visit the clusters in :func:`cluster_order`, cycling (one pick per cluster and
    cycle, as the code's ``i % len(clusters)``), skipping clusters with no
    unpicked unlabeled point left. In the visited cluster, with ``P`` its unlabeled,
    unpicked points and ``K = min(num_neighbors, |P| // 2)`` (at least 1) [C], pick
    ``argmax_{x ∈ P} Typicality(x)`` among ``P`` — the smallest mean K-NN distance,
    ties to the lower ``index`` (default the position).

    ``mean_knn(positions, K)`` gives the mean K-NN distance of each point among
    ``positions`` (itself excluded). Returns ``(positions (k',), typicality (k',))``,
    ``k' = min(k, #unlabeled)``, typicality ``1 / (mean distance + 1e-5)`` [C].
    """
    clusters = np.asarray(clusters, dtype=np.int64)
    labeled = np.asarray(labeled, dtype=bool)
    m = clusters.size
    tie = np.arange(m, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
    open_points = ~labeled
    k = int(min(max(int(k), 0), int(open_points.sum())))
    picks: list[int] = []
    scores: list[float] = []
    for group in cluster_order(clusters, labeled, min_cluster_size):
        while len(picks) < k:
            live = [c for c in group if open_points[clusters == c].any()]
            if not live:
                break
            for cluster in live:
                if len(picks) == k:
                    break
                members = np.flatnonzero(open_points & (clusters == cluster))
                distance = np.asarray(mean_knn(members, max(1, min(int(num_neighbors), members.size // 2))), dtype=np.float64)
                best = members[distance == distance.min()]
                pick = int(best[np.argmin(tie[best])])
                picks.append(pick)
                scores.append(1.0 / (float(distance.min()) + TYPICALITY_EPS))
                open_points[pick] = False
    return np.asarray(picks, dtype=np.int64), np.asarray(scores, dtype=np.float64)
