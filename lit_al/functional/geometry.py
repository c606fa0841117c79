"""Pure array math of the embedding-geometry strategies (no FAISS: neighbour searches live in lit_al.index).

- :func:`l2_normalize_rows`: row normalisation of ALPS / BERT-KM (STRATEGIES.md §1.12, §1.13).
- :func:`contrastive_kl`, :func:`contrastive_kl_of_neighbors`: the CAL score (Margatina et al. 2021).
- :func:`information_density`: Settles & Craven's density-weighted uncertainty, K-NN form.
"""

from __future__ import annotations

import numpy as np

#: Probability floor of the KL terms (CAL): probabilities are clipped to [CLIP, 1] (or [CLIP, 1 − CLIP] per label).
CLIP = 1e-12


def l2_normalize_rows(x: np.ndarray, eps: float = 1e-12, *, out: np.ndarray | None = None) -> np.ndarray:
    """``x_i / max(||x_i||₂, eps)`` for every row (ALPS ``s_x ← s_x / max(||s_x||, 1e-12)``, §1.13 step 4).

    Zero rows stay zero. Returns a new float32 array (the k-means input type), or writes into
    the float32 array ``out`` (which may be ``x`` itself: a 10^6 × 384 pool then needs no
    second 1.5 GB copy) and returns it.
    """
    x = np.asarray(x, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    scale = np.maximum(norms, eps).astype(np.float32)[:, None]
    if out is None:
        return x / scale
    return np.divide(x, scale, out=out)


def contrastive_kl(probs: np.ndarray, neighbor_probs: np.ndarray, *, multi_label: bool = False) -> np.ndarray:
    """CAL score: mean KL divergence from the neighbours' predictions to the candidate's.

    Margatina et al. 2021, "Active Learning by Acquiring Contrastive Examples"
    (EMNLP), Eq. for the contrastive score of a pool example ``x_p`` with K nearest
    labeled neighbours ``x_j^l`` in the model's embedding space::

        s(x_p) = (1/K) Σ_{j=1..K} KL( p(y | x_j^l) || p(y | x_p) )
        KL(q || r) = Σ_c q_c (ln q_c − ln r_c)

    ``p(y | x_j^l)`` are the current model's predictions on the neighbours (not
    their gold labels) [P]. High score = the model predicts very differently on x_p
    than on its nearest labeled examples (a contrastive example).

    - ``probs``: (n, C) candidates' probabilities; ``neighbor_probs``: (n, K, C).
    - Single-label: probabilities clipped to ``[1e-12, 1]`` before the logs.
    - Multi-label [R]: the sum over labels of Bernoulli KLs,
      ``Σ_j q_j ln(q_j/r_j) + (1−q_j) ln((1−q_j)/(1−r_j))``, with ``q, r`` clipped to
      ``[1e-12, 1 − 1e-12]`` so both terms stay finite.

    Returns (n,) float64 scores. :func:`contrastive_kl_of_neighbors` computes the same
    numbers from the labeled rows and neighbour lists without the (n, K, C) array.
    """
    r = np.asarray(probs, dtype=np.float64)
    q = np.asarray(neighbor_probs, dtype=np.float64)
    if q.ndim != 3 or q.shape[0] != r.shape[0] or q.shape[2] != r.shape[1]:
        raise ValueError(f"neighbor_probs must be (n, K, C) matching probs {r.shape[0], r.shape[1]}, got {q.shape}")
    if q.shape[1] == 0:
        raise ValueError("contrastive_kl needs at least one neighbour")
    q_terms = _KLSide(q, multi_label)
    return _mean_kl(q_terms.p, q_terms.log_p, q_terms.log_not_p, _KLSide(r, multi_label))


def contrastive_kl_of_neighbors(
    probs: np.ndarray,
    labeled_probs: np.ndarray,
    neighbors: np.ndarray,
    *,
    multi_label: bool = False,
    block_rows: int = 8192,
) -> np.ndarray:
    """:func:`contrastive_kl` with ``neighbor_probs = labeled_probs[neighbors]``, bit for bit, in row blocks.

    ``probs`` (n, C), ``labeled_probs`` (L, C), ``neighbors`` (n, K) positions into
    ``labeled_probs``. The logarithms of the labeled side are taken once per labeled
    row instead of once per (candidate, neighbour) pair, and the (n, K, C) gather
    exists for one block of candidates at a time.
    """
    neighbors = np.asarray(neighbors, dtype=np.int64)
    r = np.asarray(probs)
    if neighbors.ndim != 2 or neighbors.shape[0] != r.shape[0]:
        raise ValueError(f"neighbors must be (n, K) with n = {r.shape[0]}, got {neighbors.shape}")
    if neighbors.shape[1] == 0:
        raise ValueError("contrastive_kl needs at least one neighbour")
    labeled = _KLSide(np.asarray(labeled_probs, dtype=np.float64), multi_label)
    out = np.empty(r.shape[0], dtype=np.float64)
    for start in range(0, r.shape[0], block_rows):
        nb = neighbors[start : start + block_rows]
        candidate = _KLSide(np.asarray(r[start : start + block_rows], dtype=np.float64), multi_label)
        not_q = None if labeled.log_not_p is None else labeled.log_not_p[nb]
        out[start : start + nb.shape[0]] = _mean_kl(labeled.p[nb], labeled.log_p[nb], not_q, candidate)
    return out


class _KLSide:
    """Clipped probabilities of one side of the KL and their logarithms (``ln p``; multi-label also ``ln(1 − p)``)."""

    def __init__(self, p: np.ndarray, multi_label: bool) -> None:
        self.p = np.clip(p, CLIP, 1.0 - CLIP) if multi_label else np.clip(p, CLIP, 1.0)
        self.log_p = np.log(self.p)
        self.log_not_p = np.log1p(-self.p) if multi_label else None


def _mean_kl(q: np.ndarray, log_q: np.ndarray, log_not_q: np.ndarray | None, r: _KLSide) -> np.ndarray:
    """Mean over neighbours of ``KL(q_j || r)``: ``q`` (n, K, C) neighbours, ``r`` (n, C) candidates."""
    kl = q * (log_q - r.log_p[:, None, :])
    if log_not_q is not None:
        kl += (1.0 - q) * (log_not_q - r.log_not_p[:, None, :])
    return kl.sum(axis=2).mean(axis=1)


def information_density(
    uncertainty: np.ndarray, mean_knn_distance: np.ndarray, *, beta: float = 1.0, eps: float = 1e-12
) -> np.ndarray:
    """Density-weighted uncertainty ``u(x) · density(x)^β`` with ``density(x) = 1 / (ε + KNN(x))``.

    Settles & Craven 2008, "An Analysis of Active Learning Strategies for Sequence
    Labeling Tasks" (EMNLP), information density ``ID(x) = φ(x) · (mean similarity
    of x to the pool)^β``. Their similarity is the cosine averaged over the whole
    pool; here [R] the density is the inverse mean Euclidean distance to the K
    nearest neighbours in the unlabeled pool (``KNN(x)`` of STRATEGIES.md §2.2,
    ``mean_knn_distance``), which stays positive for any embedding, rewards local
    rather than global centrality, and costs a K-NN search instead of n².

    ``uncertainty`` must be >= 0 (higher = more uncertain); ``β = 0`` is plain
    uncertainty sampling. Returns (n,) float64 scores, higher = queried first.
    """
    u = np.asarray(uncertainty, dtype=np.float64)
    dist = np.asarray(mean_knn_distance, dtype=np.float64)
    if u.shape != dist.shape:
        raise ValueError(f"uncertainty {u.shape} and mean_knn_distance {dist.shape} differ in shape")
    density = 1.0 / (eps + np.maximum(dist, 0.0))
    with np.errstate(over="ignore", invalid="ignore"):
        weighted = u * density ** float(beta)
    # u = 0 scores 0 even where density^β overflows (0 · inf would be NaN).
    return np.where(u > 0, weighted, 0.0)
