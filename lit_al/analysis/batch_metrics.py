"""Batch-level analysis metrics (STRATEGIES.md §2.1–§2.5).

- :func:`diversity`: D(B), IBM (Ein-Dor et al. 2020) after Zhdanov (2019), §2.1.
- :func:`representativeness`: Rep(B) from the K-NN density, IBM after Zhu et al. (2008), §2.2.
- :func:`token_jaccard`, :func:`token_jaccard_from_ids`, :func:`token_jaccard_from_counts`: Gd, ALPS (Yuan et al. 2020), §2.3.
- :func:`mean_entropy_under_reference_model`: Gu, ALPS, §2.4.
- :func:`batch_overlap`: overlap of two strategies' batches, IBM, §2.5.

All nearest-neighbour searches use :mod:`lit_al.index` (exact FAISS ``IndexFlatL2``,
Euclidean distances computed in float32; :func:`representativeness` can take an
approximate index on large pools); results are returned as Python floats.
"""

from __future__ import annotations

from typing import Iterable, Literal, Sequence

import numpy as np

from lit_al.functional.uncertainty import entropy
from lit_al.index import knn_density, nearest_neighbors

DiversityMode = Literal["paper", "ibm_code"]


def diversity(
    unlabeled_emb: np.ndarray,
    batch_emb: np.ndarray,
    mode: DiversityMode = "paper",
) -> float:
    """Diversity of a batch, ``D(B)`` (IBM, Ein-Dor et al. 2020, after Zhdanov 2019; STRATEGIES.md §2.1).

    ``D(B) = ( (1/|U|) Σ_{x_i ∈ U} d_B(x_i) )^{-1}`` with Euclidean distances, where

    - ``mode="paper"`` (NN1, the paper's formula): ``d_B(x) = min_{x_j ∈ B} ||x − x_j||₂``,
      the distance to the nearest batch point;
    - ``mode="ibm_code"`` (NN2, IBM's ``DiversityCalculator``): ``NearestNeighbors(
      n_neighbors=2)`` fit on B, ``distances[:, 1]``: the distance to the
      **second**-nearest batch point. For ``x ∈ B`` that is the nearest *other* batch
      point (the first is ``x`` itself at 0); for ``x ∉ B`` it is the second-nearest.
      Needs ``|B| ≥ 2``.

    ``unlabeled_emb`` (|U|, d) is the unlabeled set *before* B is labeled, so it
    contains the batch rows; ``batch_emb`` (|B|, d) are the batch's embeddings from the
    same model. Higher means more diverse. If every distance is 0 (mean 0) the result
    is ``inf``.
    """
    u = np.asarray(unlabeled_emb)
    b = np.asarray(batch_emb)
    if mode not in ("paper", "ibm_code"):
        raise ValueError(f"mode must be 'paper' or 'ibm_code', got {mode!r}")
    if u.ndim != 2 or b.ndim != 2 or u.shape[1] != b.shape[1]:
        raise ValueError(f"expected 2-D arrays with equal columns, got {u.shape} and {b.shape}")
    if u.shape[0] == 0:
        raise ValueError("the unlabeled set is empty")
    rank = 1 if mode == "paper" else 2
    if b.shape[0] < rank:
        raise ValueError(f"mode {mode!r} needs at least {rank} batch point(s), got {b.shape[0]}")
    distances, _ = nearest_neighbors(b, u, rank)
    mean = float(np.mean(distances[:, rank - 1], dtype=np.float64))
    return float("inf") if mean == 0.0 else 1.0 / mean


def representativeness(
    unlabeled_emb: np.ndarray,
    batch_positions: np.ndarray | Sequence[int],
    k: int = 10,
    include_self: bool = False,
    index: str = "auto",
    seed: int = 0,
) -> float:
    """Representativeness of a batch via K-NN density, ``Rep(B)`` (IBM, after Zhu et al. 2008; STRATEGIES.md §2.2).

    ``KNN(x) = (1/K) Σ_{j=1..K} ||x − nn_j(x; U)||₂`` (K = 10 in the paper, the point
    itself excluded) and ``Rep(B) = 1 / ( (1/|B|) Σ_{x ∈ B} KNN(x) )``.
    Higher means the batch lies in denser, less outlying regions of U.

    - ``batch_positions``: row positions of the batch inside ``unlabeled_emb`` (B ⊂ U).
    - ``include_self=False`` (paper): K neighbours other than the point itself.
    - ``include_self=True`` (IBM code): ``NearestNeighbors(n_neighbors=K+1)`` fit on U
      averages K + 1 distances including the 0 to the point itself, i.e. ``KNN`` is
      scaled by ``K/(K+1)`` and ``Rep`` by ``(K+1)/K``; rankings are unchanged.
    - ``K`` is clipped to ``|U| − 1`` (see :func:`lit_al.index.knn_density`).
    - ``index``, ``seed``: the neighbour search (:func:`lit_al.index.knn_search`:
      ``exact | hnsw | ivf | auto``). ``auto`` searches exactly while the batch or U has
      at most ``lit_al.index.EXACT_MAX_ROWS`` rows, i.e. for any batch of usual size:
      the exact search of |B| queries is cheaper than building an index over U.

    A mean of 0 (all neighbours coincide) gives ``inf``.
    """
    positions = np.asarray(batch_positions, dtype=np.int64).ravel()
    if positions.size == 0:
        raise ValueError("the batch is empty")
    u = np.asarray(unlabeled_emb)
    if positions.min() < 0 or positions.max() >= u.shape[0]:
        raise ValueError("batch positions must index rows of unlabeled_emb")
    knn = knn_density(u, k, query_positions=positions, include_self=include_self, method=index, seed=seed)
    mean = float(np.mean(knn))
    return float("inf") if mean == 0.0 else 1.0 / mean


def _vocabulary(token_sets: Iterable[Iterable[int]], ignore: frozenset[int]) -> set[int]:
    arrays = [np.asarray(tokens).ravel() for tokens in token_sets]
    vocab = set(np.unique(np.concatenate(arrays)).tolist()) if arrays else set()
    return vocab - ignore


def token_jaccard(
    sampled_token_sets: Iterable[Iterable[int]],
    rest_token_sets: Iterable[Iterable[int]],
    ignore_ids: Iterable[int] | None = None,
) -> float:
    """Gd token-Jaccard diversity (ALPS, Yuan et al. 2020; STRATEGIES.md §2.3).

    ``Gd(D) = |V_D ∩ V_{D'}| / |V_D ∪ V_{D'}|`` where ``V_D`` is the set of token ids
    occurring in the sampled examples D and ``V_{D'}`` those in the rest of the
    training pool, ``D' = U_train \\ D``. Higher means more diverse.

    - ``sampled_token_sets`` / ``rest_token_sets``: one collection of token ids per
      example (lists, sets or arrays). ALPS's code uses the cumulative sampled set
      and the padded, truncated WordPiece ids, so [CLS], [SEP] and [PAD] count.
    - ``ignore_ids`` (option, default none as in the code): token ids removed from
      both vocabularies before the ratio (e.g. special tokens).
    - Both vocabularies empty: the union is empty and the result is defined as 0.0.
    """
    ignore = frozenset(int(t) for t in (ignore_ids or ()))
    v_d = _vocabulary(sampled_token_sets, ignore)
    v_rest = _vocabulary(rest_token_sets, ignore)
    union = v_d | v_rest
    if not union:
        return 0.0
    return len(v_d & v_rest) / len(union)


def token_jaccard_from_ids(
    token_ids: np.ndarray | Sequence[Sequence[int]],
    selected: np.ndarray | Sequence[bool],
    ignore_ids: Iterable[int] | None = None,
) -> float:
    """Gd of :func:`token_jaccard` from the whole pool's token ids and a boolean selection (STRATEGIES.md §2.3).

    ``token_ids``: a 2-D (n, ℓ) id array (e.g. padded ``input_ids``) or a sequence
    of n per-example id sequences; ``selected``: boolean mask of length n, True for
    the sampled set D. ``D'`` is every unselected example.
    ``Gd = |V_D ∩ V_{D'}| / |V_D ∪ V_{D'}|``.
    """
    mask = np.asarray(selected, dtype=bool).ravel()
    rows = list(token_ids) if not isinstance(token_ids, np.ndarray) else token_ids
    if len(rows) != mask.size:
        raise ValueError(f"{len(rows)} examples but a selection of length {mask.size}")
    if isinstance(rows, np.ndarray) and rows.ndim == 2:
        return token_jaccard([rows[mask].ravel()], [rows[~mask].ravel()], ignore_ids)
    chosen = [rows[i] for i in np.flatnonzero(mask)]
    rest = [rows[i] for i in np.flatnonzero(~mask)]
    return token_jaccard(chosen, rest, ignore_ids)


def token_jaccard_from_counts(
    selected_counts: np.ndarray,
    total_counts: np.ndarray,
    ignore_ids: Iterable[int] | None = None,
) -> float:
    """Gd of :func:`token_jaccard` from token-id occurrence counts (STRATEGIES.md §2.3).

    ``selected_counts[t]``: occurrences of id t in the sampled set D; ``total_counts[t]``:
    in the whole pool D ∪ D' (``np.bincount`` of every row's ids). ``V_D = {t : selected > 0}``,
    ``V_{D'} = {t : total − selected > 0}``, ``Gd = |V_D ∩ V_{D'}| / |V_D ∪ V_{D'}|``.
    O(vocabulary) per call: for a growing D the pool's counts are taken once and D's are
    updated with the rows each round adds, instead of re-reading the whole pool.
    """
    total = np.asarray(total_counts, dtype=np.int64).ravel()
    selected = np.zeros_like(total)
    counts = np.asarray(selected_counts, dtype=np.int64).ravel()
    if counts.size > total.size or (counts > total[: counts.size]).any():
        raise ValueError("selected_counts exceed total_counts: D must be a subset of the pool")
    selected[: counts.size] = counts
    in_d, in_rest = selected > 0, total - selected > 0
    ignore = np.fromiter((int(t) for t in (ignore_ids or ())), dtype=np.int64)
    ignore = ignore[(ignore >= 0) & (ignore < total.size)]
    in_d[ignore] = in_rest[ignore] = False
    union = int(np.count_nonzero(in_d | in_rest))
    return 0.0 if union == 0 else int(np.count_nonzero(in_d & in_rest)) / union


def mean_entropy_under_reference_model(probs_of_selected: np.ndarray) -> float:
    """Gu: mean predictive entropy under the full-data model, in nats (ALPS; STRATEGIES.md §2.4).

    ``Gu(D) = (1/|D|) Σ_{x ∈ D} Σ_c f_c(x; θ*) · ln(1 / f_c(x; θ*))`` where ``θ*`` is
    the model fine-tuned on the entire training set and ``probs_of_selected`` (|D|, C)
    holds its softmax probabilities for the (cumulative) sampled set D.
    ``0 · ln(1/0)`` is taken as 0. Rows are used as given (not renormalised).
    """
    p = np.asarray(probs_of_selected, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"expected a non-empty (|D|, C) array, got shape {p.shape}")
    if np.any(p < 0):
        raise ValueError("probabilities must be non-negative")
    return float(np.mean(entropy(p)))


def batch_overlap(
    batch_a: np.ndarray | Sequence[int],
    batch_b: np.ndarray | Sequence[int],
    k: int | None = None,
) -> float:
    """Overlap of two batches selected from the same pool (IBM; STRATEGIES.md §2.5).

    ``Overlap(S1, S2) = |B_{S1} ∩ B_{S2}| / k`` over pool ids (duplicates within a
    batch count once). ``k`` defaults to ``max(|B_{S1}|, |B_{S2}|)`` (distinct ids),
    which is the batch size when both batches have size k, as in IBM (k = 50).
    """
    a = set(np.asarray(batch_a).ravel().tolist())
    b = set(np.asarray(batch_b).ravel().tolist())
    denominator = max(len(a), len(b)) if k is None else int(k)
    if denominator <= 0:
        raise ValueError(f"k must be positive, got {denominator}")
    return len(a & b) / denominator
