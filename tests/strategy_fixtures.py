"""Synthetic prediction outputs for driving strategies through the array API.

``OUTPUT_FACTORIES`` maps each output name a strategy may declare in ``needs``
to a function that fabricates a realistic array for it. A new output name gets
one entry here; the contract suite then covers every strategy that needs it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _probs(rng, n, C, d, T, ell, multi_label):
    logits = rng.normal(size=(n, C)) * 2.0
    if multi_label:
        return 1.0 / (1.0 + np.exp(-logits))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _mc_probs(rng, n, C, d, T, ell, multi_label):
    base = rng.normal(size=(1, n, C)) * 2.0
    logits = base + rng.normal(size=(T, n, C)) * 0.5
    if multi_label:
        return 1.0 / (1.0 + np.exp(-logits))
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    return e / e.sum(axis=2, keepdims=True)


def _embeddings(rng, n, C, d, T, ell, multi_label):
    centers = rng.normal(size=(C, d)) * 3.0
    return centers[rng.integers(0, C, size=n)] + rng.normal(size=(n, d))


OUTPUT_FACTORIES: dict[str, Callable[..., np.ndarray]] = {
    "probs": _probs,
    "mc_probs": _mc_probs,
    "embeddings": _embeddings,
    "cls_hidden": _embeddings,
    "pretrained_embeddings": _embeddings,
    # EGL full / word: per-example expected gradient lengths, (n,) >= 0
    "egl_full": lambda rng, n, C, d, T, ell, multi_label: rng.gamma(2.0, 1.0, size=n),
    "egl_word": lambda rng, n, C, d, T, ell, multi_label: rng.gamma(2.0, 0.1, size=n),
    # MII: per-example head-averaged variance of last-layer attention column sums (>= 0, small)
    "attention_intra": lambda rng, n, C, d, T, ell, multi_label: rng.gamma(2.0, 0.05, size=n),
    # ALDEN: one L2-normalised token interpretation per example, (n, d)
    "alden_interpretation": lambda rng, n, C, d, T, ell, multi_label: (
        lambda g: g / np.linalg.norm(g, axis=1, keepdims=True)
    )(_embeddings(rng, n, C, d, T, ell, multi_label)),
    # ALPS: MLM surprisal at Bernoulli(0.15)-sampled positions of the padded input, 0 elsewhere, (n, ell) >= 0
    "surprisal": lambda rng, n, C, d, T, ell, multi_label: (
        rng.gamma(2.0, 2.0, size=(n, ell)) * (rng.random((n, ell)) < 0.15)
    ),
}


def make_labels(rng: np.random.Generator, n: int, C: int, labeled: np.ndarray, multi_label: bool) -> np.ndarray:
    """0/1 label rows on labeled pool indices (every class present at least once), NaN elsewhere."""
    labels = np.full((n, C), np.nan)
    rows = np.zeros((labeled.size, C))
    if multi_label:
        rows = (rng.random((labeled.size, C)) < 0.3).astype(float)
        rows[np.arange(labeled.size), np.arange(labeled.size) % C] = 1.0
    else:
        rows[np.arange(labeled.size), np.arange(labeled.size) % C] = 1.0
    labels[labeled] = rows
    return labels


def make_outputs(
    needs,
    *,
    n: int = 60,
    C: int = 3,
    d: int = 8,
    T: int = 5,
    ell: int = 12,
    multi_label: bool = False,
    labeled: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Fabricate every output in ``needs`` plus ``labels`` (for ``labeled`` rows)."""
    rng = np.random.default_rng(seed)
    out = {name: OUTPUT_FACTORIES[name](rng, n, C, d, T, ell, multi_label) for name in sorted(needs)}
    if labeled is not None:
        out["labels"] = make_labels(rng, n, C, np.asarray(labeled), multi_label)
    return out


def make_constant_outputs(
    needs, *, n: int = 60, multi_label: bool = False, labeled: np.ndarray | None = None, seed: int = 0, **sizes
) -> dict[str, np.ndarray]:
    """Like :func:`make_outputs`, but every example's outputs are the same row (and every MC pass the same pass).

    Only ``labels`` keep their variety (class centers and auxiliary models need classes).
    Every score is then mathematically the same for all examples: an exact tie.
    """
    out = make_outputs(needs, n=n, multi_label=multi_label, labeled=labeled, seed=seed, **sizes)
    for name, array in out.items():
        if name == "labels":
            continue
        if name == "mc_probs":
            out[name] = np.broadcast_to(array[:1, :1], array.shape).copy()
        else:
            out[name] = np.broadcast_to(array[:1], array.shape).copy()
    return out
