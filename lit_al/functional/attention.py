"""MII: margin, intra-correlation and inter-correlation (STRATEGIES.md §1.14; [MII] §3.4, Eqs. 9–14).

``attention_intra`` is a torch function: the model side calls it inside
``predict_step`` on each batch's last-layer attention probabilities and stores
only its (B,) result, so nothing of size n × heads × ℓ × ℓ is ever kept.
Everything else here works on NumPy arrays at selection time.
"""

from __future__ import annotations

import numpy as np

from .lazy import LazyModule

torch = LazyModule("torch")  # imported when a torch function here first runs, not with lit_al.strategies

#: Accepted ``mode`` values of :func:`attention_intra` (the first is the default).
ATTENTION_INTRA_MODES: tuple[str, ...] = ("column_sum", "row_sum")

#: Rows of ``reps`` handled at once by :func:`inter_correlation` (bounds the float64 working copy).
_BLOCK_ROWS = 8192
_EPS = 1e-12


def attention_intra(attn: torch.Tensor, mask: torch.Tensor, mode: str = "column_sum") -> torch.Tensor:
    """Per-example intra-correlation ``R_intra`` of one layer's attention (MII Eq. 10–12, §1.14).

    ``attn`` (B, h, ℓ, ℓ) holds attention probabilities ``a_jk`` (query j, key k)
    of the fine-tuned model's LAST layer for h heads; ``mask`` (B, ℓ) is the 0/1
    (or bool) attention mask, 1 on every real token including [CLS] and [SEP].
    With ``T`` the non-pad positions and ``n_t = |T|``::

        R_intra = (1/h) Σ_i (1/n_t) Σ_{k∈T} (s_k^{(i)} − s̄^{(i)})²,   s̄^{(i)} = (1/n_t) Σ_{k∈T} s_k^{(i)}

    i.e. the population variance of the per-token attention sums, averaged over heads.

    - ``mode="column_sum"`` (default, [R]): ``s_k = Σ_{j∈T} a_jk``, the attention token
      k *receives* from the real query positions. HF BERT masks padding on the key
      axis only, so every query row puts (up to rounding) zero mass on pad keys and
      sums to 1 over ``T``; hence ``s̄ = 1`` exactly in exact arithmetic and
      ``R_intra = (1/h) Σ_i (1/n_t) Σ_k (s_k − 1)²``. ``s̄`` is still computed from the
      data rather than assumed, so attention that leaks mass onto pad keys is not
      silently misread. Pad query rows (which HF also normalises) are excluded.
    - ``mode="row_sum"``: ``s_j = Σ_{k∈T} a_jk``, the paper's literal wording ("summing
      over the rows"). Softmax rows sum to 1, so this is identically 0 (it contradicts
      the paper's ablation); kept only for fidelity.

    Resolution: a sum of ℓ terms in ``attn``'s dtype is exact to about ``ℓ·ε``
    (ε its machine epsilon), so a variance below ``(ℓ·ε)²`` (2.3e-10 for float32,
    ℓ = 128) is rounding noise and is returned as exactly 0: ``row_sum`` gives 0
    for every example, and so do uniform attentions under ``column_sum``. Equal
    intra-correlations are then exact ties (broken by the lower pool index),
    not an order drawn by float noise.

    Returns a (B,) tensor on ``attn``'s device, in ``attn``'s dtype promoted to at
    least float32. A row whose mask is all zero (no token) gives 0.
    """
    if mode not in ATTENTION_INTRA_MODES:
        raise ValueError(f"attention_intra: mode must be one of {ATTENTION_INTRA_MODES}, got {mode!r}")
    if attn.ndim != 4 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError(f"attention_intra: attn must be (B, heads, ℓ, ℓ), got {tuple(attn.shape)}")
    if mask.shape != (attn.shape[0], attn.shape[-1]):
        raise ValueError(f"attention_intra: mask must be (B, ℓ) = {(attn.shape[0], attn.shape[-1])}, got {tuple(mask.shape)}")
    dtype = torch.promote_types(attn.dtype, torch.float32)
    a = attn.to(dtype)
    m = mask.to(device=attn.device, dtype=dtype)
    # einsum avoids materialising a masked copy of the (B, h, ℓ, ℓ) tensor
    if mode == "column_sum":
        sums = torch.einsum("bhjk,bj->bhk", a, m)
    else:
        sums = torch.einsum("bhjk,bk->bhj", a, m)
    n_t = m.sum(dim=1).clamp_min(1.0)[:, None]  # (B, 1); clamp keeps empty rows at 0 instead of NaN
    mean = (sums * m[:, None, :]).sum(dim=-1) / n_t
    var = (((sums - mean[..., None]) ** 2) * m[:, None, :]).sum(dim=-1) / n_t
    intra = var.mean(dim=1)
    resolution = (attn.shape[-1] * torch.finfo(attn.dtype).eps) ** 2
    return torch.where(intra < resolution, torch.zeros_like(intra), intra)


def class_centers(reps: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classification centers ``X_LL^c`` from the labeled rows (§1.14 [R]; the paper leaves them undefined).

    ``X_LL^c = mean{ reps[i] : i ∈ rows, labels[i, c] = 1 }`` for each class (single-label,
    one-hot ``labels``) or label (multi-label: the mean of the label's positives).
    Classes with no labeled example among ``rows`` are skipped: they have no center
    and so take no part in ``R_inter``. Rows whose label row is not finite (NaN: no
    label recorded for them) contribute to no center.

    Returns ``(centers (c, d) float64, class_ids (c,))`` with the kept class ids ascending.
    """
    rows = np.asarray(rows, dtype=np.int64)
    x = np.asarray(reps[rows], dtype=np.float64)
    y = np.asarray(labels[rows], dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"class_centers: reps rows {x.shape} and label rows {y.shape} do not match")
    known = np.isfinite(y).all(axis=1)
    x, y = x[known], y[known]
    counts = y.sum(axis=0)
    kept = np.flatnonzero(counts > 0)
    centers = (y[:, kept].T @ x) / counts[kept, None]
    return centers, kept.astype(np.int64)


def inter_correlation(reps: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """``R_inter(x) = max_c cos(X_LL(x), X_LL^c)`` (MII Eq. 13, §1.14), one value per row of ``reps``.

    The paper takes the max over its two class centers; here over every row of
    ``centers`` (C classes or J labels, [R]). A zero vector has cosine 0 with
    everything (norms are floored at 1e-12). Computed in float64 blocks of rows,
    so memory stays O(block · d).
    """
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[0] == 0:
        raise ValueError("inter_correlation: need at least one center, shape (c, d)")
    if reps.ndim != 2 or reps.shape[1] != centers.shape[1]:
        raise ValueError(f"inter_correlation: reps {reps.shape} and centers {centers.shape} disagree on d")
    unit = centers / np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), _EPS)
    out = np.empty(reps.shape[0], dtype=np.float64)
    for start in range(0, reps.shape[0], _BLOCK_ROWS):
        block = np.asarray(reps[start : start + _BLOCK_ROWS], dtype=np.float64)
        norms = np.maximum(np.sqrt(np.einsum("ij,ij->i", block, block)), _EPS)
        out[start : start + block.shape[0]] = (block @ unit.T).max(axis=1) / norms
    return out


def mii_score(margin: np.ndarray, intra: np.ndarray, inter: np.ndarray, inter_sign: int = -1) -> np.ndarray:
    """``MII(x) = f_u(x) · R_intra(x) + inter_sign · R_inter(x)``; select the k SMALLEST (MII Eq. 14, §1.14).

    ``margin`` is ``f_u = p(C1|x) − p(C2|x)`` (top-1 minus top-2; multi-label
    ``min_j |2 p_j − 1|`` [R]). ``inter_sign = −1`` (default) is the paper's equation,
    ``f_u · R_intra − R_inter``, which prefers points *similar* to a class center;
    ``inter_sign = +1`` follows the paper's prose ("samples similar to clustering
    centers are probably redundant") and prefers dissimilar points. No term is
    rescaled: the paper specifies no normalisation, so R_inter ∈ [−1, 1] usually
    dominates the small product.
    """
    if inter_sign not in (-1, 1):
        raise ValueError(f"mii_score: inter_sign must be -1 or +1, got {inter_sign!r}")
    margin = np.asarray(margin, dtype=np.float64)
    intra = np.asarray(intra, dtype=np.float64)
    inter = np.asarray(inter, dtype=np.float64)
    if not (margin.shape == intra.shape == inter.shape) or margin.ndim != 1:
        raise ValueError(f"mii_score: shapes differ: {margin.shape}, {intra.shape}, {inter.shape}")
    return margin * intra + float(inter_sign) * inter
