"""ALDEN: diversity of local interpretations (STRATEGIES.md §1.16) — a RECONSTRUCTION.

ALDEN's method section is not available (the seed text stops after the
introduction and no code was published). What is known is the paper's summary:
a sample's local interpretations are the gradients of the final prediction
with respect to the input features, the word whose interpretation is most
diverse represents the sentence, and the samples with the most diverse
interpretations are queried. Every concrete choice below (gradient target,
reference set, distance, selection) is this project's reconstruction ([R] in
STRATEGIES.md §1.16), not the paper's; do not cite results from it as ALDEN's.

Reconstruction ([R]):

1. Interpretation of token t: ``g_t = ∂z_ŷ/∂e_t ∈ R^d`` (the predicted-class logit;
   or all C logits, flattened to ``C·d``), ``e_t`` the input embedding.
2. ``div(g) = min_{z∈Z_L} ||g − z||_2``, ``Z_L`` the labeled samples' sentence
   representations from the current model.
3. Sentence representation ``z(x) = g_{t*}``, ``t* = argmax_t div(g_t)`` over real,
   non-special tokens.
4. Batch: ``KCENTER({z(x)}_U, Z_L, k)`` (``lit_al.index.kcenter_greedy``), or the
   top-k by ``div(z(x))``.

Step 2 needs ``Z_L`` and step 3 defines ``Z_L``, so labeled samples use a
non-circular rule ([R]): their representation is the interpretation of the
token with the LARGEST GRADIENT NORM (``reference=None`` below). The model side
therefore runs two passes: labeled rows first (reference None) to build ``Z_L``,
then unlabeled rows with ``reference = Z_L``. Only the chosen token's vector is
kept per example, so the stored output is (n, D), never (n, ℓ, D).

The torch functions (:func:`aggregate_subwords`, :func:`select_token_interpretations`)
are called by the model side per batch on any device; :func:`sentence_diversity`
is NumPy, used at selection time.
"""

from __future__ import annotations

import numpy as np

from .lazy import LazyModule

torch = LazyModule("torch")  # imported when a torch function here first runs, not with lit_al.strategies

#: Accepted values of ``aggregate_subwords(mode=...)`` ("none" = word pieces are tokens).
SUBWORD_AGGREGATES: tuple[str, ...] = ("none", "sum", "max")

_EPS = 1e-12
_BLOCK_ROWS = 4096


def aggregate_subwords(
    token_grads: torch.Tensor, word_ids: torch.Tensor, mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge word-piece interpretations into word interpretations (§1.16 pitfalls, [R]).

    ``token_grads`` (B, ℓ, D); ``word_ids`` (B, ℓ) integer, the 0-based index of the
    word each piece belongs to (HF ``BatchEncoding.word_ids()``), −1 for special
    and pad positions (they are dropped). Returns ``(word_grads (B, ℓ, D),
    word_mask (B, ℓ))``: slot w holds word w (a word index is never larger than
    its first piece's position, so ℓ slots suffice) and ``word_mask[b, w] = 1``
    iff word w has at least one piece.

    - ``mode="sum"``: ``g_w = Σ_{t∈w} g_t``, the interpretation of the word as the
      sum of its pieces' linear contributions.
    - ``mode="max"``: ``g_w = g_{t'}``, ``t'`` the piece of w with the largest
      ``||g_t||_2`` (ties: the first piece).
    """
    if mode not in ("sum", "max"):
        raise ValueError(f"aggregate_subwords: mode must be 'sum' or 'max', got {mode!r}")
    if token_grads.ndim != 3 or word_ids.shape != token_grads.shape[:2]:
        raise ValueError(
            f"aggregate_subwords: token_grads (B, ℓ, D) and word_ids (B, ℓ) expected, got "
            f"{tuple(token_grads.shape)} and {tuple(word_ids.shape)}"
        )
    B, L, D = token_grads.shape
    ids = word_ids.to(device=token_grads.device, dtype=torch.long)
    valid = ids >= 0
    slot = ids.clamp_min(0)
    word_mask = torch.zeros(B, L, device=token_grads.device, dtype=token_grads.dtype)
    word_mask.scatter_add_(1, slot, valid.to(token_grads.dtype))
    word_mask = (word_mask > 0).to(token_grads.dtype)
    if mode == "sum":
        g = token_grads * valid[..., None].to(token_grads.dtype)
        out = torch.zeros_like(token_grads).scatter_add_(1, slot[..., None].expand(B, L, D), g)
        return out, word_mask
    norms = token_grads.norm(dim=-1).masked_fill(~valid, -1.0)
    best = torch.full((B, L), -1.0, device=token_grads.device, dtype=norms.dtype)
    best = best.scatter_reduce(1, slot, norms, reduce="amax")
    is_best = valid & (norms == torch.gather(best, 1, slot))
    positions = torch.arange(L, device=token_grads.device).expand(B, L)
    # the first best piece of each word: the smallest position among the word's maxima
    first = torch.full((B, L), L, device=token_grads.device, dtype=torch.long)
    first = first.scatter_reduce(1, slot, positions.masked_fill(~is_best, L), reduce="amin")
    first = first.clamp_max(L - 1)
    out = torch.gather(token_grads, 1, first[..., None].expand(B, L, D)) * word_mask[..., None]
    return out, word_mask


def select_token_interpretations(
    token_grads: torch.Tensor,
    mask: torch.Tensor,
    reference: torch.Tensor | None = None,
    normalize: bool = True,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """One interpretation per example: the chosen token's (optionally normalised) gradient (§1.16 [R]).

    ``token_grads`` (B, ℓ, D): per-token interpretations ``g_t`` (D = d, or C·d for the
    full Jacobian, or word interpretations from :func:`aggregate_subwords`);
    ``mask`` (B, ℓ) 0/1 with pad AND special tokens ([CLS], [SEP], ...) zeroed.
    With ``ĝ_t = g_t / ||g_t||`` if ``normalize`` else ``g_t``:

    - ``reference`` is None or has no rows (the labeled pass): ``t* = argmax_t ||g_t||_2``,
      the raw (un-normalised) gradient norm, [R].
    - ``reference`` ``Z_L`` (r, D) (the unlabeled pass; rows already in the same
      space, i.e. outputs of the labeled pass): ``t* = argmax_t min_{z∈Z_L} ||ĝ_t − z||_2``.

    Returns ``ĝ_{t*}`` (B, D). Ties pick the lowest position. A row with no valid
    token returns zeros. With ``normalize=True`` the Euclidean distance is a
    monotone function of cosine distance (``||u−v||² = 2 − 2cos``), i.e. the
    cosine variant of §1.16. ``chunk_size`` reference rows are compared at a time,
    bounding memory at B·ℓ·chunk_size. Computed in at least float32.
    """
    if token_grads.ndim != 3 or mask.shape != token_grads.shape[:2]:
        raise ValueError(
            f"select_token_interpretations: token_grads (B, ℓ, D) and mask (B, ℓ) expected, got "
            f"{tuple(token_grads.shape)} and {tuple(mask.shape)}"
        )
    dtype = torch.promote_types(token_grads.dtype, torch.float32)
    g = token_grads.to(dtype)
    valid = mask.to(device=g.device).bool()
    norms = g.norm(dim=-1)
    if normalize:
        g = g / norms.clamp_min(_EPS)[..., None]
    if reference is None or reference.shape[0] == 0:
        score = norms
    else:
        ref = reference.to(device=g.device, dtype=dtype)
        if ref.ndim != 2 or ref.shape[1] != g.shape[2]:
            raise ValueError(f"select_token_interpretations: reference must be (r, {g.shape[2]}), got {tuple(ref.shape)}")
        g_sq = (g * g).sum(dim=-1)
        score = torch.full_like(norms, float("inf"))
        for start in range(0, ref.shape[0], chunk_size):
            z = ref[start : start + chunk_size]
            # squared distances suffice: argmax of a min is unchanged by the monotone sqrt
            d2 = g_sq[..., None] - 2.0 * torch.einsum("bld,rd->blr", g, z) + (z * z).sum(dim=-1)
            score = torch.minimum(score, d2.clamp_min(0.0).min(dim=-1).values)
    score = score.masked_fill(~valid, float("-inf"))
    t_star = score.argmax(dim=1)
    chosen = g[torch.arange(g.shape[0], device=g.device), t_star]
    return chosen * valid.any(dim=1, keepdim=True).to(dtype)


def sentence_diversity(z: np.ndarray, z_labeled: np.ndarray) -> np.ndarray:
    """``div(z(x)) = min_{z_L∈Z_L} ||z(x) − z_L||_2`` for each row of ``z`` (m, D) (§1.16 [R]).

    ``z_labeled`` (r, D), r ≥ 1. Computed in float64 blocks of rows via
    ``||a||² − 2a·b + ||b||²`` (clipped at 0), so memory stays O(block · r).
    """
    ref = np.asarray(z_labeled, dtype=np.float64)
    if ref.ndim != 2 or ref.shape[0] == 0:
        raise ValueError("sentence_diversity: Z_L must have at least one row, shape (r, D)")
    if z.ndim != 2 or z.shape[1] != ref.shape[1]:
        raise ValueError(f"sentence_diversity: z {z.shape} and Z_L {ref.shape} disagree on D")
    ref_sq = np.einsum("ij,ij->i", ref, ref)
    out = np.empty(z.shape[0], dtype=np.float64)
    for start in range(0, z.shape[0], _BLOCK_ROWS):
        block = np.asarray(z[start : start + _BLOCK_ROWS], dtype=np.float64)
        d2 = np.einsum("ij,ij->i", block, block)[:, None] - 2.0 * (block @ ref.T) + ref_sq[None, :]
        out[start : start + block.shape[0]] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out
