"""Gradient-embedding scores: BADGE seeding and Expected Gradient Length (STRATEGIES.md §1.8, §1.11).

Everything here works on the last layer ``z = W h + b`` of a classifier, where
``h`` (n, d) is the penultimate representation (``embeddings``) and ``p`` (n, C)
the softmax (single-label) or sigmoid (multi-label) output (``probs``). The
per-example gradient of the loss with respect to ``W`` is the outer product
``(p - y) h^T``, so every quantity below factorises into a C-dimensional part
and a d-dimensional part and never materialises a C·d vector.

NumPy in, NumPy out, except the ``torch`` helpers at the end, which the model
side uses to build the ``egl_full`` / ``egl_word`` outputs (see ``EGL_OUTPUTS``).
"""

from __future__ import annotations

import numpy as np

from .lazy import LazyModule

torch = LazyModule("torch")  # imported when a torch function here first runs, not with lit_al.strategies

BADGE_VARIANTS = ("original", "alps")
BADGE_PRECISIONS = ("float64", "float32")
EGL_NORMS = ("l2", "squared")

#: Output names whose per-example values only the model can compute, for ``egl``
#: with ``variant="full"`` / ``"word"`` (STRATEGIES.md §1.8). Exact contract for
#: the model-side computer:
#:
#: Both are float arrays of shape ``(n,)`` (one scalar per pool example, pool
#: index on axis 0). They are computed with the model in **eval mode** (no
#: dropout), for the model fine-tuned on the current labeled set. Let
#: ``G(x, y)`` be the gradient of the loss of example ``x`` alone with target
#: ``y`` (``reduction='sum'`` over that one example): single-label
#: ``ℓ = CE(logits(x), y)`` with ``y`` a class index; multi-label
#: ``ℓ = Σ_j BCE(logit_j(x), y_j)`` with ``y ∈ {0,1}^J``. Let ``N(v)`` be
#: ``||v||_2`` when the prediction option ``egl_norm == "l2"`` (default) and
#: ``||v||_2²`` when ``egl_norm == "squared"``.
#:
#: - ``egl_full``: θ = every parameter with ``requires_grad=True`` (encoder and
#:   head), all flattened into one vector.
#:   Single-label: ``Σ_c p_c(x) · N(∇_θ ℓ(x, c))`` (exact, C backward passes;
#:   ``egl_from_per_class_gradients`` does the weighting).
#:   Multi-label: ``(1/S) Σ_s N(∇_θ ℓ(x, y^s))`` with ``y^s_j ~ Bernoulli(p_j(x))``
#:   independent, ``S = egl_samples`` (prediction option, default 10), drawn by
#:   ``sample_multilabel_targets`` from a ``torch.Generator`` seeded with the
#:   prediction request's seed (``egl_from_sampled_gradients`` averages).
#: - ``egl_word`` (EGL-word, Zhang et al. 2017): ``E`` = the input word-embedding
#:   matrix (``word_embeddings.weight``, (V, d)); for a token id ``w``,
#:   ``∇_{E_w} ℓ`` is the gradient w.r.t. **row w of that matrix** (so a token id
#:   occurring at several positions of ``x`` sums the contributions of its
#:   positions; for a token occurring once it equals the gradient w.r.t. the word
#:   embedding vector at that position, before position/type embeddings and
#:   LayerNorm are applied). W(x) = the distinct token ids of ``x`` at positions
#:   that are attended (attention_mask = 1) and not special tokens ([CLS], [SEP],
#:   [PAD], ... per the tokenizer's special-tokens mask).
#:   Single-label: ``max_{w ∈ W(x)} Σ_c p_c(x) · N(∇_{E_w} ℓ(x, c))``.
#:   Multi-label: ``max_{w ∈ W(x)} (1/S) Σ_s N(∇_{E_w} ℓ(x, y^s))``, y^s as above.
#:   If W(x) is empty the value is 0.
#:
#: Prediction options the strategy passes: ``egl_norm`` ("l2" | "squared") and,
#: multi-label, ``egl_samples`` (int ≥ 1).
EGL_FULL = "egl_full"
EGL_WORD = "egl_word"
EGL_OUTPUTS: dict[str, str] = {
    EGL_FULL: "(n,) Σ_c p_c N(∇_θ ℓ(x,c)) over all trainable parameters; ML: MC mean over y ~ Bern(p)",
    EGL_WORD: "(n,) max over non-special token ids w of Σ_c p_c N(∇_{E_w} ℓ(x,c)); ML: MC mean over y ~ Bern(p)",
}


# ------------------------------------------------------------------ BADGE
def badge_residuals(probs: np.ndarray, multi_label: bool = False) -> np.ndarray:
    """The C-dimensional factor ``r = p - ŷ`` of the BADGE gradient embedding ``g = r ⊗ h``.

    Single-label: ``ŷ = e_{argmax p}`` (ties to the lower class), so
    ``g_x = [(p_c - 1[ŷ=c]) h(x)]_c`` (ALPS's sign; badge uses the opposite sign,
    which changes no distance). Multi-label (BEAL baseline, §1.11 ML [R]):
    ``ŷ_j = 1[p_j > 0.5]``, the BCE gradient of the last layer at the predicted labels.
    """
    p = np.asarray(probs, dtype=np.float64)
    if multi_label:
        return p - (p > 0.5)
    r = p.copy()
    r[np.arange(p.shape[0]), p.argmax(axis=1)] -= 1.0
    return r


def badge_gradient_norms(residuals: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """``||g_x||_2 = ||r_x||_2 · ||h_x||_2`` for ``g_x = r_x ⊗ h_x`` (badge's memory trick)."""
    r = np.asarray(residuals, dtype=np.float64)
    h = np.asarray(embeddings, dtype=np.float64)
    return np.sqrt(np.einsum("ij,ij->i", r, r) * np.einsum("ij,ij->i", h, h))


def _row_squared_norms(x: np.ndarray, block: int = 65536) -> np.ndarray:
    """``||x_i||²`` accumulated in float64, in row blocks (no full float64 copy of x)."""
    out = np.empty(x.shape[0], dtype=np.float64)
    for start in range(0, x.shape[0], block):
        chunk = x[start : start + block].astype(np.float64, copy=False)
        out[start : start + block] = np.einsum("ij,ij->i", chunk, chunk)
    return out


#: Largest (n, d) embedding copy in the ``precision`` dtype; above it (a float64 copy of a
#: 10^6 × 384 pool is 3 GB) the float32 rows stay as they are and each pick converts them
#: block by block: the same products, O(block) extra memory, a slower pick.
PRECISION_COPY_MAX_BYTES = 1 << 30
_INNER_BLOCK_ROWS = 16384


def _embeddings_in(embeddings: np.ndarray, precision: np.dtype) -> np.ndarray:
    """The embeddings in ``precision`` when that copy is at most ``PRECISION_COPY_MAX_BYTES``, else as given."""
    h = np.asarray(embeddings)
    if h.dtype == precision or h.shape[0] * h.shape[1] * precision.itemsize <= PRECISION_COPY_MAX_BYTES:
        return np.asarray(h, dtype=precision)
    return h


def _inner_products(h: np.ndarray, b: int, precision: np.dtype) -> np.ndarray:
    """``<h_i, h_b>`` for every row i in ``precision``, as float64 (rows converted per block when ``h`` is not in it)."""
    center = h[b].astype(precision)
    if h.dtype == precision:
        return (h @ center).astype(np.float64, copy=False)
    out = np.empty(h.shape[0], dtype=np.float64)
    for start in range(0, h.shape[0], _INNER_BLOCK_ROWS):
        out[start : start + _INNER_BLOCK_ROWS] = h[start : start + _INNER_BLOCK_ROWS].astype(precision) @ center
    return out


def kmeanspp_seed_factored(
    residuals: np.ndarray,
    embeddings: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    variant: str = "original",
    precision: str = "float64",
) -> np.ndarray:
    """KMEANSPP_SEED over the gradient embeddings ``g_i = r_i ⊗ h_i`` without building them (§0, §1.11).

    Returns ``k`` distinct row positions, in the order they were chosen.

    The squared distance from every point to a newly chosen center b is
    ``||g_i||² + ||g_b||² - 2 <r_i, r_b> <h_i, h_b>`` (because
    ``<r_i ⊗ h_i, r_b ⊗ h_b> = <r_i, r_b><h_i, h_b>``), O(n(C+d)) per pick.

    ``variant="original"`` (badge's ``init_centers``, Ash et al. 2020 [C]):

    1. the first center is ``argmax_i ||g_i||`` (ties to the lower position);
    2. ``D(i)`` = distance to the nearest chosen center, updated per pick;
    3. the next center is drawn with ``P(i) ∝ D(i)²`` from ``rng`` (one
       ``rng.random()`` per pick, inverted through the cumulative sum); chosen
       points have D = 0 (set explicitly, so round-off never redraws them);
    4. no Lloyd iterations: the seeds are the query.

    ``variant="alps"`` (forest-snow/alps [C]): the same on the L2-normalised
    ``g_i / ||g_i||`` (a zero vector stays zero), i.e. inner products divided by
    ``||g_i|| ||g_b||``, and the first center drawn uniformly with ``rng.integers``.

    Resolution: ``D²`` is computed by the expansion above, whose cancellation leaves
    noise of about ``ε (||g_i||² + ||g_b||²)`` (ε of ``precision``); a ``D²`` below
    ``16 ε (||g_i||² + ||g_b||²)`` is taken as 0, so coincident points are never
    drawn for their rounding noise.

    Fallback (badge's code stops in ``pdb`` here): when ``Σ D² = 0`` — every
    unchosen point coincides with a center, e.g. all gradient norms are 0 because
    every prediction is confident — the remaining centers are drawn uniformly
    without replacement among the unchosen positions (``rng.permutation``).

    ``precision`` is the dtype of the (n, d) embedding copy (above
    ``PRECISION_COPY_MAX_BYTES`` the rows are converted block by block instead, with
    the same results) and of the per-pick product ``H h_b``, the only O(nd) work:
    ``"float64"`` (default) agrees with the explicit C·d computation to double round-off; ``"float32"`` halves the
    memory and time of that step at a relative error of about 1e-6 of
    ``||h_a|| ||h_b||`` in ``<h_a, h_b>``, which changes a pick only when the
    uniform draw falls within that error of a cumulative-sum boundary. Everything
    else (norms, residuals, D²) stays in float64.
    """
    if variant not in BADGE_VARIANTS:
        raise ValueError(f"variant must be one of {BADGE_VARIANTS}, got {variant!r}")
    if precision not in BADGE_PRECISIONS:
        raise ValueError(f"precision must be one of {BADGE_PRECISIONS}, got {precision!r}")
    r = np.asarray(residuals, dtype=np.float64)
    h = _embeddings_in(embeddings, np.dtype(precision))
    n = r.shape[0]
    if h.shape[0] != n:
        raise ValueError(f"residuals have {n} rows, embeddings {h.shape[0]}")
    k = int(k)
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    if k == 0:
        return np.empty(0, dtype=np.int64)

    sq_norm = np.einsum("ij,ij->i", r, r) * _row_squared_norms(h)
    if variant == "alps":
        norm = np.sqrt(sq_norm)
        scale = np.divide(1.0, norm, out=np.zeros(n), where=norm > 0)
        sq_norm = (norm > 0).astype(np.float64)
        first = int(rng.integers(n))
    else:
        scale = None
        first = int(np.argmax(sq_norm))

    resolution = 16.0 * np.finfo(np.dtype(precision)).eps

    def squared_distances(b: int) -> np.ndarray:
        inner = (r @ r[b]) * _inner_products(h, b, np.dtype(precision))
        if scale is not None:
            inner *= scale * scale[b]
        d2 = sq_norm + sq_norm[b] - 2.0 * inner
        # Cancellation leaves noise of either sign for coincident points: below the resolution it is 0.
        d2[d2 <= resolution * (sq_norm + sq_norm[b])] = 0.0
        return d2

    chosen = np.empty(k, dtype=np.int64)
    is_chosen = np.zeros(n, dtype=bool)
    chosen[0] = first
    is_chosen[first] = True
    d2_min = squared_distances(first)
    d2_min[first] = 0.0
    for t in range(1, k):
        cum = np.cumsum(d2_min)
        total = cum[-1]
        if not total > 0.0:
            rest = np.flatnonzero(~is_chosen)
            chosen[t:] = rest[rng.permutation(rest.size)[: k - t]]
            break
        u = rng.random() * total
        i = int(np.searchsorted(cum, u, side="right"))
        if i >= n or d2_min[i] == 0.0:  # u rounded onto the total: take the last positive-weight point
            i = int(np.flatnonzero(d2_min > 0.0)[-1])
        chosen[t] = i
        is_chosen[i] = True
        np.minimum(d2_min, squared_distances(i), out=d2_min)
        d2_min[is_chosen] = 0.0
    return chosen


def badge_select(
    probs: np.ndarray,
    embeddings: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    multi_label: bool = False,
    variant: str = "original",
    precision: str = "float64",
) -> np.ndarray:
    """BADGE (Ash et al. 2020; ALPS and BEAL baseline, §1.11): k-means++ seeds of ``g = (p - ŷ) ⊗ h``.

    Returns row positions into ``probs``/``embeddings``, in pick order.
    """
    return kmeanspp_seed_factored(
        badge_residuals(probs, multi_label), embeddings, k, rng, variant=variant, precision=precision
    )


# -------------------------------------------------------------------- EGL
def _check_norm(norm: str) -> None:
    if norm not in EGL_NORMS:
        raise ValueError(f"norm must be one of {EGL_NORMS}, got {norm!r}")


def _squared_residuals_to_each_class(p: np.ndarray) -> np.ndarray:
    """``||p - e_c||²`` for every class c: (n, C), without cancellation for confident rows.

    ``||p||² - 2 p_c + 1`` loses all precision when ``p_c → 1``; instead, with
    ``m = argmax p`` and ``S = Σ_{j≠m} p_j²`` summed directly,
    ``||p - e_m||² = S + (1 - p_m)²`` and, for ``c ≠ m``,
    ``||p - e_c||² = S + p_m² - p_c² + (1 - p_c)²`` (no small differences of large terms).
    """
    rows = np.arange(p.shape[0])
    top = p.argmax(axis=1)
    p_top = p[rows, top]
    others = p.copy()
    others[rows, top] = 0.0
    rest = np.einsum("ij,ij->i", others, others)
    out = (rest + p_top**2)[:, None] - p**2 + (1.0 - p) ** 2
    out[rows, top] = rest + (1.0 - p_top) ** 2
    return np.maximum(out, 0.0)


def egl_head(probs: np.ndarray, embeddings: np.ndarray, *, norm: str = "l2") -> np.ndarray:
    """Closed-form EGL over the last layer ``(W, b)`` of a softmax classifier (§1.8 variant (b) [R]).

    ``EGL(x) = Σ_c p_c ||∇_{W,b} CE(x, c)||_2`` (Settles et al. 2008; IBM; MII Eq. 4),
    with ``∇_W = (p - e_c) h^T`` and ``∇_b = p - e_c``, hence
    ``||∇_{W,b}|| = ||p - e_c||_2 · sqrt(||h||² + 1)`` and
    ``||p - e_c||² = ||p||² - 2 p_c + 1``. O(n(C+d)).

    ``norm="l2"`` (default) is the paper's norm. ``norm="squared"`` weights the
    squared norm, as dsgissin's EGL code does; it reduces to
    ``(1 - ||p||²)(||h||² + 1)``. (small-text's ``ExpectedGradientLength``
    computes ``sqrt(g²).sum()``, an L1 norm, by mistake; neither option reproduces that.)
    """
    _check_norm(norm)
    p = np.asarray(probs, dtype=np.float64)
    h = np.asarray(embeddings, dtype=np.float64)
    h_term = np.einsum("ij,ij->i", h, h) + 1.0
    residual_sq = _squared_residuals_to_each_class(p)
    if norm == "squared":
        return (p * residual_sq).sum(axis=1) * h_term
    return (p * np.sqrt(residual_sq)).sum(axis=1) * np.sqrt(h_term)


def egl_head_multilabel(
    probs: np.ndarray,
    embeddings: np.ndarray,
    *,
    norm: str = "l2",
    expectation: str = "closed_form",
    samples: int = 10,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Multi-label EGL over the last layer (§1.8 ML [R]).

    Loss ``ℓ = Σ_j BCE(p_j, y_j)`` with ``y_j ~ Bernoulli(p_j)`` independent (the
    2^J-term exact expectation of the norm has no closed form). Then
    ``∇_W = (p - y) h^T``, ``∇_b = p - y`` and ``||∇_{W,b}||² = ||p - y||² (||h||² + 1)``.

    ``expectation="closed_form"`` (default) uses the exact expected **squared** norm
    ``E||∇_{W,b}||² = (||h||² + 1) Σ_j p_j (1 - p_j)`` (the spec writes it for W
    alone, without the ``+1`` of the bias). It returns that value for
    ``norm="squared"`` and its square root (the root-mean-square gradient length,
    an upper bound on ``E||∇||`` by Jensen) for ``norm="l2"``; the two rank
    examples identically.

    ``expectation="monte_carlo"`` estimates ``E||∇||`` (``norm="l2"``) or
    ``E||∇||²`` (``norm="squared"``) with ``samples`` draws of ``y`` from ``rng``.
    """
    _check_norm(norm)
    p = np.asarray(probs, dtype=np.float64)
    h = np.asarray(embeddings, dtype=np.float64)
    h_term = np.einsum("ij,ij->i", h, h) + 1.0
    if expectation == "closed_form":
        mean_sq = h_term * (p * (1.0 - p)).sum(axis=1)
        return mean_sq if norm == "squared" else np.sqrt(mean_sq)
    if expectation != "monte_carlo":
        raise ValueError(f"expectation must be 'closed_form' or 'monte_carlo', got {expectation!r}")
    if rng is None or samples < 1:
        raise ValueError("monte_carlo needs rng and samples >= 1")
    total = np.zeros(p.shape[0])
    for _ in range(int(samples)):
        y = rng.random(p.shape) < p
        residual_sq = ((p - y) ** 2).sum(axis=1)
        total += residual_sq if norm == "squared" else np.sqrt(residual_sq)
    total /= samples
    return total * h_term if norm == "squared" else total * np.sqrt(h_term)


# ---------------------------------------------- torch helpers for the model side
def egl_from_per_class_gradients(probs: torch.Tensor, grad_norms: torch.Tensor, *, norm: str = "l2") -> torch.Tensor:
    """``EGL(x) = Σ_c p_c N(∇ ℓ(x, c))`` from per-class gradient L2 norms (§1.8; ``EGL_OUTPUTS``).

    ``probs`` (n, C) softmax; ``grad_norms`` (n, C) with ``grad_norms[i, c] =
    ||∇ ℓ(x_i, c)||_2`` over the chosen parameter set (all of θ for ``egl_full``;
    one embedding row for one token for ``egl_word``, before the max over tokens).
    ``norm="squared"`` squares the norms before weighting (dsgissin's form).
    Returns (n,).
    """
    _check_norm(norm)
    if probs.shape != grad_norms.shape:
        raise ValueError(f"probs {tuple(probs.shape)} and grad_norms {tuple(grad_norms.shape)} differ")
    lengths = grad_norms.square() if norm == "squared" else grad_norms
    return (probs * lengths).sum(dim=-1)


def sample_multilabel_targets(probs: torch.Tensor, samples: int, generator: torch.Generator) -> torch.Tensor:
    """Draw ``samples`` label vectors ``y_j ~ Bernoulli(p_j)`` independently: (S, n, J) float 0/1."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    u = torch.rand((int(samples), *probs.shape), generator=generator, dtype=probs.dtype, device=probs.device)
    return (u < probs.unsqueeze(0)).to(probs.dtype)


def egl_from_sampled_gradients(grad_norms: torch.Tensor, *, norm: str = "l2") -> torch.Tensor:
    """Multi-label Monte-Carlo EGL: ``(1/S) Σ_s N(∇ ℓ(x, y^s))`` from (n, S) gradient L2 norms.

    ``grad_norms[i, s] = ||∇ ℓ_BCE(x_i, y^s_i)||_2`` with ``y^s`` from
    ``sample_multilabel_targets``. Returns (n,).
    """
    _check_norm(norm)
    lengths = grad_norms.square() if norm == "squared" else grad_norms
    return lengths.mean(dim=-1)
