"""Stopping signals of an active-learning run (pure functions over prediction arrays).

- **Stabilizing predictions** (Bloodgood & Vijay-Shanker 2009, "A Method for Stopping
  Active Learning Based on Stabilizing Predictions and the Need for User-Adjustable
  Stopping", CoNLL): the models of successive rounds label a fixed, unlabeled *stop set*;
  Cohen's kappa measures their agreement, and learning stops once the mean kappa of
  the last ``k`` comparisons reaches a threshold (the paper's k = 3 and 0.99).
- **Overall uncertainty** and **max uncertainty** (Zhu, Wang & Hovy 2008,
  "Multi-criteria-based strategy to stop active learning for data annotation",
  COLING): the mean, and the largest, predictive entropy over unlabeled examples; the
  run stops once it falls to a threshold (their "overall-uncertainty" and
  "max-confidence" criteria). Entropies are normalised to [0, 1] here so that one
  threshold means the same for any number of classes.
- **Expected error**: the mean of ``1 - max_c p_c``, the error rate the model expects
  of its own predictions on those examples (per label ``min(p_j, 1 - p_j)`` for
  multi-label).
- **Class balance** of the labeled set: counts per class and the minority/majority
  ratio.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from lit_al.functional.uncertainty import binary_entropy, entropy, least_confidence, multilabel_least_confidence


def predicted_labels(probs: np.ndarray, multi_label: bool, threshold: float = 0.5) -> np.ndarray:
    """Hard predictions: the argmax class (n,) for single-label, ``p_j >= threshold`` (n, C) for multi-label."""
    p = np.asarray(probs)
    if multi_label:
        return p >= threshold
    return p.argmax(axis=-1)


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two labelings of the same items, ``(p_o - p_e) / (1 - p_e)``.

    ``p_o`` is the fraction of items on which they agree and ``p_e = sum_c a_c b_c`` the
    agreement expected by chance from each labeling's class frequencies ``a_c``, ``b_c``.
    Multi-label predictions (n, C) are compared as n*C binary decisions. When both
    labelings put every item in the same single class, ``p_e = 1`` and kappa is 0/0;
    they then agree perfectly and 1.0 is returned. Empty input gives NaN.
    """
    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"kappa needs two labelings of the same items, got {a.shape} and {b.shape}")
    if a.size == 0:
        return math.nan
    observed = float(np.mean(a == b))
    classes, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    freq_a = np.bincount(codes[: a.size], minlength=classes.size) / a.size
    freq_b = np.bincount(codes[a.size:], minlength=classes.size) / b.size
    expected = float(np.dot(freq_a, freq_b))
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)


def stabilized(kappas: Sequence[float], window: int = 3, threshold: float = 0.99) -> tuple[float, bool]:
    """Mean of the last ``window`` kappas and whether it reached ``threshold`` (Bloodgood & Vijay-Shanker 2009).

    Fewer than ``window`` comparisons, or a missing one (NaN: a round without a model)
    inside the window, give ``(nan, False)``: the criterion needs ``window`` successive
    comparisons.
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    recent = np.asarray(list(kappas)[-window:], dtype=np.float64)
    if recent.size < window or np.isnan(recent).any():
        return math.nan, False
    mean = float(recent.mean())
    return mean, mean >= threshold


def normalized_uncertainty(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    """Per-example entropy scaled to [0, 1]: ``H(p) / ln C`` (single-label), or ``mean_j H_b(p_j) / ln 2`` (multi-label)."""
    p = np.asarray(probs, dtype=np.float64)
    if multi_label:
        return binary_entropy(p).mean(axis=-1) / math.log(2.0)
    classes = p.shape[-1]
    return entropy(p) / math.log(classes) if classes > 1 else np.zeros(p.shape[0])


def expected_error(probs: np.ndarray, multi_label: bool) -> np.ndarray:
    """Per-example expected error: ``1 - max_c p_c`` (single-label), ``mean_j min(p_j, 1 - p_j)`` (multi-label)."""
    return multilabel_least_confidence(probs) if multi_label else least_confidence(probs)


def class_balance(counts: np.ndarray) -> float:
    """Minority/majority ratio ``min_c n_c / max_c n_c`` of per-class label counts (1 = balanced, 0 = a class unseen).

    NaN when nothing is labeled.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.size == 0 or counts.max() == 0:
        return math.nan
    return float(counts.min() / counts.max())
