"""Uncertainty scores from predicted probabilities (STRATEGIES.md §1.2–1.4).

Single-label ``probs`` are softmax rows (n, C); multi-label ``probs`` are
independent sigmoid outputs (n, J). Every score here is "higher = more
uncertain", so the strategies take the top-k by score.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats, ``H(p) = -sum_c p_c ln p_c`` (ALPS; MII baseline).

    Zero probabilities contribute 0 (the limit of ``p ln p``).
    """
    p = np.asarray(probs, dtype=np.float64)
    terms = np.log(p, out=np.zeros_like(p), where=p > 0)  # no log is taken of a zero
    terms *= p
    return -terms.sum(axis=-1)


def binary_entropy(q: np.ndarray) -> np.ndarray:
    """``H_b(q) = -q ln q - (1-q) ln(1-q)``, elementwise, q clipped to [1e-12, 1-1e-12]."""
    q = _clip(q)
    return -(q * np.log(q) + (1.0 - q) * np.log1p(-q))


def multilabel_entropy(probs: np.ndarray) -> np.ndarray:
    """Multi-label entropy ``s = sum_j H_b(p_j)`` (STRATEGIES.md §1.4 ML [R])."""
    return binary_entropy(probs).sum(axis=-1)


#: Up to this many classes, row maxima run column by column (numpy's reduction along a
#: short last axis is several times slower than C vectorised passes).
COLUMNWISE_MAX_CLASSES = 64


def _float(probs: np.ndarray) -> np.ndarray:
    """``probs`` as a floating array, float32 kept (maxima of float32 values are exact in either type)."""
    p = np.asarray(probs)
    return p if p.dtype in (np.float32, np.float64) else p.astype(np.float64)


def _top_two(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The largest and second-largest value of each row (equal values count twice), in ``p``'s dtype."""
    if p.ndim != 2 or p.shape[1] > COLUMNWISE_MAX_CLASSES:
        top2 = -np.partition(-p, 1, axis=-1)[..., :2]
        return top2[..., 0], top2[..., 1]
    first = p[:, 0].copy()
    second = np.full_like(first, -np.inf)
    smaller = np.empty_like(first)
    for c in range(1, p.shape[1]):
        column = p[:, c]
        np.maximum(second, np.minimum(first, column, out=smaller), out=second)
        np.maximum(first, column, out=first)
    return first, second


def _row_max(p: np.ndarray) -> np.ndarray:
    if p.ndim != 2 or p.shape[1] > COLUMNWISE_MAX_CLASSES:
        return p.max(axis=-1)
    first = p[:, 0].copy()
    for c in range(1, p.shape[1]):
        np.maximum(first, p[:, c], out=first)
    return first


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """Least confidence ``s = 1 - max_c p_c`` (IBM §1.2), in float64."""
    return 1.0 - _row_max(_float(probs)).astype(np.float64)


def multilabel_least_confidence(probs: np.ndarray, reduce: str = "mean") -> np.ndarray:
    """Multi-label LC: ``(1/J) sum_j (1 - max(p_j, 1-p_j))`` (``reduce='mean'``) or ``max_j``."""
    p = np.asarray(probs, dtype=np.float64)
    per_label = 1.0 - np.maximum(p, 1.0 - p)
    return _reduce(per_label, reduce)


def margin(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability ``p_(1) - p_(2)`` (MII Eq. for f_u). Smaller = more uncertain."""
    p = _float(probs)
    if p.shape[-1] < 2:
        raise ValueError("margin needs at least two classes")
    first, second = _top_two(p)
    return first.astype(np.float64) - second.astype(np.float64)


def multilabel_margin(probs: np.ndarray, reduce: str = "min") -> np.ndarray:
    """Multi-label margin ``min_j |2 p_j - 1|`` (``reduce='min'``) or the mean over j. Smaller = more uncertain."""
    per_label = np.abs(2.0 * np.asarray(probs, dtype=np.float64) - 1.0)
    return _reduce(per_label, reduce)


def _reduce(values: np.ndarray, reduce: str) -> np.ndarray:
    if reduce == "mean":
        return values.mean(axis=-1)
    if reduce == "max":
        return values.max(axis=-1)
    if reduce == "min":
        return values.min(axis=-1)
    raise ValueError(f"reduce must be 'mean', 'max' or 'min', got {reduce!r}")
