"""Bayesian (MC-dropout) acquisition scores (STRATEGIES.md §0, §1.5, §1.6, §1.15; BatchBALD).

Every function takes ``mc_probs`` of shape (T, n, C): T stochastic forward passes
(MC dropout) over n examples, softmax rows (single-label) or independent sigmoid
outputs (multi-label, C = J labels). Logs are natural (nats).

Precision: the stored outputs are float32. Per-element terms (``p ln p``,
``2^y``) are computed in the input's floating precision (float32 or float64) and
every sum over classes, passes or configurations is accumulated in float64; the
resulting scores are float64. Probabilities are clipped to ``[1e-12, 1 - 1e-12]``
before a logarithm (as ``q`` and ``1 - q`` each clipped below at 1e-12).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ranking import top_k

EPS = 1e-12

#: Default number M of sampled label configurations in BatchBALD's Monte-Carlo regime.
BATCHBALD_NUM_SAMPLES = 1000
#: Default number of (configuration x candidate x class) entries BatchBALD materialises at once.
BATCHBALD_CHUNK_SIZE = 1 << 21
#: Absolute slack (nats) when discarding candidates by an upper bound: covers float32 rounding
#: of the configuration probabilities, so that a candidate whose gain ties the best is never discarded.
_PRUNE_TOL = 1e-5
#: Number of candidates evaluated exactly before each pruning pass (to raise the incumbent).
_INCUMBENTS = 8
#: Below this many (configuration x candidate x class) entries, the survivors are evaluated in full without grouping.
_DIRECT = 1 << 17
#: Probabilities and posterior masses below this are set to 0 inside BatchBALD (see ``_Configurations.posteriors``).
_FLUSH = 1e-30
_LOG_FLUSH = float(np.log(_FLUSH))
#: A configuration whose posterior puts less than this mass off its most likely pass is
#: treated as concentrated on that pass in the full evaluation: ``H(r_s) = H(p_x^τ)`` from a
#: per-(candidate, pass) entropy table computed once. The error, at most about
#: ``mass · ln(1/p_min)`` (first order), is below the float32 rounding of ``r_s`` itself.
_SHARP = 1e-10
#: Default memory cap of BatchBALD's cached O(T²)-per-candidate bound table.
BATCHBALD_BOUND_CACHE_BYTES = 1 << 29
#: What BatchBALD does once no candidate can add ``saturation_gain`` nats (see ``batch_bald``).
BATCHBALD_SATURATION_RULES = ("restart", "bald", "greedy")
#: Default ``saturation_gain`` (nats): the float32 resolution of a gain, as ``_PRUNE_TOL``.
BATCHBALD_SATURATION_GAIN = 1e-5


# ----------------------------------------------------------------------------- helpers
def _as_mc(mc_probs: np.ndarray) -> np.ndarray:
    array = np.asarray(mc_probs)
    if array.ndim != 3:
        raise ValueError(f"mc_probs must have shape (T, n, C), got {array.shape}")
    if array.shape[0] < 1:
        raise ValueError("mc_probs needs at least one pass (T >= 1)")
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float32 if array.dtype == np.float16 else np.float64)
    return array


def _neg_plogp_sum(p: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``-sum_c q_c ln q_c`` over the last axis with ``q = max(p, 1e-12)``, accumulated in float64.

    ``out``: where ``q`` is written (``p`` itself clips in place); a fresh array by default.
    """
    q = np.maximum(p, p.dtype.type(EPS), out=out)
    return -np.einsum("...c,...c->...", q, np.log(q), dtype=np.float64)


def _row_entropy(p: np.ndarray, multi_label: bool) -> np.ndarray:
    """``H(p)`` (single-label) or ``sum_j H_b(p_j)`` (multi-label) of each row, float64."""
    if not multi_label:
        return _neg_plogp_sum(p)
    return _neg_plogp_sum(p) + _neg_plogp_sum(1 - p)


# ----------------------------------------------------------------------- MC dropout
def mean_probs(mc_probs: np.ndarray) -> np.ndarray:
    """Posterior predictive ``p̄ = (1/T) sum_t p^t``, shape (n, C), float64.

    The mean of the probabilities, never of the logits (STRATEGIES.md §1.5 pitfall).
    """
    return np.mean(_as_mc(mc_probs), axis=0, dtype=np.float64)


def mc_entropy(mc_probs: np.ndarray, multi_label: bool = False) -> np.ndarray:
    """Max-entropy MC-dropout acquisition (IBM "Dropout", Ein-Dor et al. 2020; STRATEGIES.md §1.5).

    Single-label ``s(x) = H(p̄) = -sum_c p̄_c ln p̄_c``; multi-label
    ``s(x) = sum_j H_b(p̄_j)`` [R], with ``p̄ = mean_t p^t``. Higher = more uncertain.
    """
    return _row_entropy(mean_probs(mc_probs), multi_label)


def expected_entropy(mc_probs: np.ndarray, multi_label: bool = False) -> np.ndarray:
    """``(1/T) sum_t H(p^t)`` (or ``(1/T) sum_t sum_j H_b(p_j^t)``), shape (n,), float64.

    BALD's aleatoric term ``E_w H(y|x, w)``. One pass at a time, so the extra
    memory is O(n C), not O(T n C).
    """
    array = _as_mc(mc_probs)
    total = np.zeros(array.shape[1], dtype=np.float64)
    for t in range(array.shape[0]):
        total += _row_entropy(array[t], multi_label)
    return total / array.shape[0]


def bald(mc_probs: np.ndarray, multi_label: bool = False) -> np.ndarray:
    """BALD mutual information ``I(y; w | x)`` (Houlsby et al. 2011; Gal et al. 2017; STRATEGIES.md §1.6).

    Single-label: ``MI(x) = H(p̄) - (1/T) sum_t H(p^t)``.
    Multi-label (labels as independent Bernoullis, BEAL's setting [R]):
    ``MI(x) = sum_j [H_b(p̄_j) - (1/T) sum_t H_b(p_j^t)]``.
    Probabilities are clipped to ``[1e-12, 1 - 1e-12]`` inside the logarithms. Higher = more informative.

    Computed in the equivalent form that cancels, the mean KL divergence of each pass
    from the mean (``Σ_t p^t_c = T p̄_c``)::

        MI(x) = (1/T) sum_t sum_c p^t_c (ln p^t_c - ln p̄_c)

    in float64, with ``p̄ = p^0 + (1/T) sum_t (p^t - p^0)``: passes that agree give
    ``p̄ = p^t`` bit for bit and every log ratio is exactly 0, so an example without
    disagreement scores exactly 0 (the entropy difference leaves float32 noise up to
    about 1e-7 there, which would order exact ties). Rounding below 0 is clipped (MI >= 0).
    """
    array = _as_mc(mc_probs)
    first = array[0].astype(np.float64)
    shift = np.zeros_like(first)
    for t in range(1, array.shape[0]):
        shift += array[t]
        shift -= first
    p_bar = first + shift / array.shape[0]
    mi = _mean_kl_to_mean(array, p_bar, complement=False)
    if multi_label:
        mi += _mean_kl_to_mean(array, p_bar, complement=True)
    return np.maximum(mi, 0.0)


def _mean_kl_to_mean(array: np.ndarray, p_bar: np.ndarray, *, complement: bool) -> np.ndarray:
    """``(1/T) sum_t sum_c q^t_c (ln q^t_c - ln q̄_c)``, float64, with ``q = p`` (or ``1 - p``) clipped at 1e-12."""
    q_bar = np.maximum(1.0 - p_bar if complement else p_bar, EPS)
    log_bar = np.log(q_bar)
    total = np.zeros(array.shape[1], dtype=np.float64)
    for t in range(array.shape[0]):
        q = array[t].astype(np.float64)
        if complement:
            q = 1.0 - q
        np.maximum(q, EPS, out=q)
        total += np.einsum("ic,ic->i", q, np.log(q) - log_bar)
    return total / array.shape[0]


# ----------------------------------------------------------------------------- BEAL
def beal_expected_confidence(mc_probs: np.ndarray) -> np.ndarray:
    """BEAL's expected confidence EC(x) (Wang et al. 2024, Eq. 2; STRATEGIES.md §1.15).

    With relevance ``R(y) = 2^y - 1`` and ``r̄_j = (1/T) sum_t R(Y_j^t)``, let ``π̂``
    rank the labels by ``r̄`` descending (1-based ranks). Then
    ``EC(x) = (1/T) sum_t sum_j R(Y_j^t) / π̂(j) = sum_j r̄_j / π̂(j)``:
    the sorted mean relevances weighted 1, 1/2, 1/3, ... (ties in ``r̄`` do not
    change EC). BEAL queries the **lowest** EC. ``mc_probs`` are sigmoid outputs
    (multi-label, BEAL's home) or softmax rows (the single-label generalisation [R],
    ``EC = sum_r R(p_(r)) / r``). With T = 1 and dropout off this is deterministic
    BEAL (the ablation).
    """
    array = _as_mc(mc_probs)
    n_passes, n, labels = array.shape
    mean_relevance = np.zeros((n, labels), dtype=np.float64)
    for t in range(n_passes):
        relevance = np.exp2(array[t])
        relevance -= 1
        mean_relevance += relevance
    mean_relevance /= n_passes
    ranked = -np.sort(-mean_relevance, axis=1)
    discount = 1.0 / np.arange(1, labels + 1, dtype=np.float64)
    return ranked @ discount


# ------------------------------------------------------------------------ BatchBALD
@dataclass(frozen=True)
class BatchBALDResult:
    """Greedy BatchBALD picks and their scores (all arrays of length k, in pick order).

    ``indices``: positions along the candidate axis of ``mc_probs``.
    ``gains``: the marginal gain of each pick, ``a(A ∪ {x}) - a(A)`` (its conditional MI given the earlier picks).
    ``scores``: ``a_BatchBALD`` of the first i+1 picks.
    ``joint_entropies``: ``H(y_1, ..., y_{i+1})``, exact or the Monte-Carlo estimate.
    ``exact``: whether step i enumerated the configurations of the earlier picks exactly.
    ``evaluated``: how many candidates had their gain computed in full at step i (the rest were
    discarded by an upper bound, see ``batch_bald``).
    ``saturated``: whether pick i was made at a saturated step (no candidate could gain
    ``saturation_gain`` nats), by the ``saturation`` rule instead of the gain.
    ``sub_batch``: the sub-batch of pick i (0 first; only ``saturation="restart"`` opens more).
    ``gains``, ``scores``, ``joint_entropies`` and ``exact`` are those of pick i within its sub-batch.
    """

    indices: np.ndarray
    gains: np.ndarray
    scores: np.ndarray
    joint_entropies: np.ndarray
    exact: np.ndarray
    evaluated: np.ndarray
    saturated: np.ndarray
    sub_batch: np.ndarray


def _logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(values, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(values - top), axis=axis)) + np.squeeze(top, axis=axis)


def _categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of ``probs`` (rows need not be normalised) by inverse CDF."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cdf[:, -1]
    # first class whose cumulative mass exceeds u: zero-probability classes are never drawn
    return np.minimum((cdf <= u[:, None]).sum(axis=1), probs.shape[1] - 1)


class _Configurations:
    """Label configurations ŷ of the chosen batch A, each with its posterior over the T passes.

    ``log_pi`` (S, T): ``ln π_s(t) = ln p(w_t | ŷ_s)``; ``log_p`` (S,): ``ln p(ŷ_s) =
    ln (1/T) sum_t prod_{i in A} p_i^t[ŷ_{s,i}]``; ``weight`` (S,): the estimator weight ω_s,
    so that ``H(y_A) ≈ -sum_s ω_s ln p(ŷ_s)``. Exact regime: all configurations with
    nonzero probability, ``ω_s = p(ŷ_s)``. Monte-Carlo regime: M configurations drawn
    ancestrally (pass ``t_m = m mod T``, then ``ŷ_{m,i} ~ p_i^{t_m}``), stratified weights
    ``ω_m = 1 / (T · #{m' : t_m' = t_m})``.
    """

    def __init__(self, n_passes: int) -> None:
        self.n_passes = n_passes
        self.log_pi = np.full((1, n_passes), -np.log(n_passes))
        self.log_p = np.zeros(1)
        self.weight = np.ones(1)
        self.component: np.ndarray | None = None  # the pass t_m of each sample (Monte-Carlo regime)

    @property
    def exact(self) -> bool:
        return self.component is None

    @property
    def size(self) -> int:
        return self.log_p.shape[0]

    def entropy(self) -> float:
        return float(-(self.weight * self.log_p).sum())

    def posteriors(self) -> np.ndarray:
        # masses below _FLUSH are zeroed: they are far below float32 resolution of any
        # entropy here, and subnormal floats slow matrix products by orders of magnitude
        return np.exp(np.where(self.log_pi < _LOG_FLUSH, -np.inf, self.log_pi))

    def extend_exact(self, probs: np.ndarray) -> None:
        """Add a point with pass probabilities ``probs`` (T, C): every configuration splits into C."""
        with np.errstate(divide="ignore"):
            log_probs = np.log(probs.T)  # (C, T)
        joint = self.log_pi[:, None, :] + log_probs[None, :, :]  # (S, C, T)
        log_r = _logsumexp(joint, axis=2)  # ln p(y_x = c | ŷ_s)
        keep = np.isfinite(log_r)
        self.log_pi = (joint - log_r[..., None])[keep]
        self.log_p = (self.log_p[:, None] + log_r)[keep]
        self.weight = np.exp(self.log_p)

    def start_sampling(self, chosen: list[np.ndarray], num_samples: int, rng: np.random.Generator) -> None:
        """Draw ``num_samples`` configurations of the chosen points (each (T, C)) ancestrally."""
        n_passes = self.n_passes
        component = np.arange(num_samples) % n_passes
        log_w = np.zeros((num_samples, n_passes))
        with np.errstate(divide="ignore"):
            for probs in chosen:
                labels = _categorical(probs[component], rng)
                log_w += np.log(probs[:, labels].T)
        log_z = _logsumexp(log_w, axis=1)
        self.log_pi = log_w - log_z[:, None]
        self.log_p = log_z - np.log(n_passes)
        counts = np.bincount(component, minlength=n_passes)
        self.weight = 1.0 / (n_passes * counts[component])
        self.component = component

    def extend_sampled(self, probs: np.ndarray, rng: np.random.Generator) -> None:
        """Extend every sampled configuration by ``y_x ~ p_x^{t_m}`` (reusing the earlier draws)."""
        labels = _categorical(probs[self.component], rng)
        with np.errstate(divide="ignore"):
            joint = self.log_pi + np.log(probs[:, labels].T)
        log_z = _logsumexp(joint, axis=1)
        self.log_pi = joint - log_z[:, None]
        self.log_p = self.log_p + log_z


def _weighted_entropy(
    posteriors: np.ndarray, weights: np.ndarray, probs: np.ndarray, positions: np.ndarray, chunk_size: int
) -> np.ndarray:
    """``sum_s ω_s H(sum_t π_s(t) p_x^t)`` for the candidates at ``positions``, float64.

    ``posteriors`` (S, T) float32, ``weights`` (S,), ``probs`` (T, m, C) float32. The
    configuration probabilities come from one float32 matmul per block; ``q ln q`` is
    summed in float64. At most ``chunk_size`` (configuration x candidate x class) entries
    exist at once (blocks of candidates, and of configurations when S·C alone exceeds it).
    """
    n_configs, n_passes = posteriors.shape
    n_classes = probs.shape[2]
    out = np.zeros(positions.size, dtype=np.float64)
    rows = max(1, min(n_configs, chunk_size // n_classes))
    block = max(1, chunk_size // (max(rows, n_passes) * n_classes))
    for first in range(0, n_configs, rows):
        part = slice(first, first + rows)
        for start in range(0, positions.size, block):
            index = positions[start : start + block]
            gathered = probs[:, index, :].reshape(n_passes, -1)
            mixed = (posteriors[part] @ gathered).reshape(-1, index.size, n_classes)  # p(y_x = c | ŷ_s)
            per_config = _neg_plogp_sum(mixed, out=mixed)  # (S', b), clipped in place
            out[start : start + block] += weights[part] @ per_config
    return out


def _group_posteriors(
    posteriors: np.ndarray, weights: np.ndarray, n_groups: int, chunk_size: int, iterations: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Partition configurations into groups of similar posteriors; return group means and masses.

    Bregman (KL) k-means on ``π_s``: the Jensen gap of a group is
    ``sum_s ω_s KL(r_s || r̄_g) <= sum_s ω_s KL(π_s || π̄_g)`` (data processing), so small
    within-group KL means a tight bound. Deterministic seeding: one group per most likely
    pass ``argmax_t π_s(t)`` (posteriors sharpen onto single passes as the batch grows),
    plus the configurations that those groups fit worst (largest ``ω_s KL``), then a few
    Lloyd steps. Any partition gives a valid bound; the grouping only decides how tight it is.
    """
    tiny = 1e-300
    n_configs = posteriors.shape[0]
    neg_entropy = np.einsum("st,st->s", posteriors, np.log(np.maximum(posteriors, tiny)))
    weighted = weights[:, None] * posteriors

    def nearest(centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # argmin_g and min_g KL(π_s || c_g)
        log_centers = np.log(np.maximum(centers, tiny)).T
        assign = np.empty(n_configs, dtype=np.int64)
        divergence = np.empty(n_configs)
        block = max(1, chunk_size // centers.shape[0])
        for start in range(0, n_configs, block):
            rows = slice(start, start + block)
            table = neg_entropy[rows, None] - posteriors[rows] @ log_centers
            assign[rows] = np.argmin(table, axis=1)
            divergence[rows] = table[np.arange(table.shape[0]), assign[rows]]
        return assign, divergence

    def means(assign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(assign, kind="stable")
        ordered = assign[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        mass = np.add.reduceat(weights[order], starts)
        sums = np.add.reduceat(weighted[order], starts, axis=0)
        used = mass > 0
        return sums[used] / mass[used, None], mass[used]

    centers, mass = means(np.argmax(posteriors, axis=1))
    centers = centers[np.argsort(-mass, kind="stable")[:n_groups]]
    extra = n_groups - centers.shape[0]
    if extra > 0:
        misfit = weights * nearest(centers)[1]
        seeds = top_k(misfit, extra)
        seeds = seeds[misfit[seeds] > 0]
        centers = np.concatenate([centers, posteriors[seeds]])
    for _ in range(iterations):
        centers, mass = means(nearest(centers)[0])
    return centers, mass


class _Bounds:
    """Per-candidate tables for the upper bounds on BatchBALD gains (see ``batch_bald``).

    ``gain(x) = sum_s ω_s H(r_s) - E_w H(y_x|w)`` with ``r_s = sum_t π_s(t) p_x^t``. By Gibbs'
    inequality ``H(r) <= -sum_c r_c ln a_c`` for every distribution ``a`` ("anchor"), an
    inequality that is linear in π. With anchors ``a^τ = p_x^τ`` (τ < T) and ``a^T = p̄_x``,
    ``X[x, t, τ] = -sum_c p_x^t[c] ln a_x^τ[c]`` and every configuration assigned an anchor,
    ``gain(x) <= sum_{t,τ} A[τ, t] X[x, t, τ] - E_w H(y_x|w)`` with
    ``A[τ, t] = sum_{s -> τ} ω_s π_s(t)``. All configurations at ``p̄`` is the tangent of H at
    ``p̄`` (O(T) per candidate; BALD in the exact regime); configurations whose posterior
    puts at least ``_ANCHOR_SHARP`` on one pass go to that pass (O(T²) per candidate, tight
    once the posteriors sharpen). ``X`` is cached (float32, ``m·T·(T+1)`` entries) when it
    fits in ``cache_bytes``, else recomputed per block.
    """

    def __init__(
        self, probs: np.ndarray, p_bar: np.ndarray, bald_scores: np.ndarray, chunk_size: int, cache_bytes: int
    ) -> None:
        self.probs = probs
        self.n_passes, self.n, self.n_classes = probs.shape
        self.chunk_size = chunk_size
        self.log_p_bar = np.log(np.maximum(p_bar, EPS)).astype(np.float32)
        self.bald = bald_scores
        self.tangent = np.empty((self.n, self.n_passes), dtype=np.float32)
        for t in range(self.n_passes):
            self.tangent[:, t] = -np.einsum("ic,ic->i", probs[t], self.log_p_bar, dtype=np.float64)
        width = self.n_passes * (self.n_passes + 1)
        self.cache: np.ndarray | None = None
        if self.n * width * 4 <= cache_bytes:
            self.cache = self._anchor_table(np.arange(self.n))

    def _anchor_table(self, positions: np.ndarray) -> np.ndarray:
        """``X[positions]`` as (len, T·(T+1)) float32, computed in blocks."""
        n_passes, n_classes = self.n_passes, self.n_classes
        out = np.empty((positions.size, n_passes * (n_passes + 1)), dtype=np.float32)
        block = max(1, self.chunk_size // (2 * n_passes * n_classes + n_passes * (n_passes + 1)))
        for start in range(0, positions.size, block):
            index = positions[start : start + block]
            rows = np.ascontiguousarray(self.probs[:, index, :].transpose(1, 0, 2))  # (b, T, C)
            logs = np.log(np.maximum(rows, np.float32(EPS)))
            anchors = np.concatenate([logs, self.log_p_bar[index][:, None, :]], axis=1)  # (b, T+1, C)
            table = -np.matmul(rows, anchors.transpose(0, 2, 1))  # (b, T, T+1)
            out[start : start + block] = table.reshape(index.size, -1)
        return out

    def tangent_bound(self, mean_posterior: np.ndarray) -> np.ndarray:
        shift = (mean_posterior - 1.0 / self.n_passes).astype(np.float32)
        return self.bald + self.tangent @ shift

    def anchor_bound(
        self,
        posteriors: np.ndarray,
        weights: np.ndarray,
        positions: np.ndarray,
        conditional: np.ndarray,
        top_pass: np.ndarray | None = None,
    ) -> np.ndarray:
        """The anchor bound of the candidates at ``positions``; ``top_pass``: ``argmax_t π_s(t)`` if already known."""
        n_passes = self.n_passes
        if top_pass is None:
            top_pass = np.argmax(posteriors, axis=1)
        top_mass = posteriors[np.arange(posteriors.shape[0]), top_pass]
        anchor = np.where(top_mass >= _ANCHOR_SHARP, top_pass, n_passes)
        weighted = weights[:, None] * posteriors
        mixing = np.stack(
            [np.bincount(anchor, weights=weighted[:, t], minlength=n_passes + 1) for t in range(n_passes)], axis=1
        )
        vector32 = mixing.T.reshape(-1).astype(np.float32)  # index t·(T+1) + τ, as in X
        if self.cache is not None:
            # one pass over the whole table beats gathering most of its rows
            values = (self.cache @ vector32)[positions] if 4 * positions.size > self.n else self.cache[positions] @ vector32
            return values.astype(np.float64) - conditional[positions]
        values = np.empty(positions.size, dtype=np.float64)
        block = max(1, self.chunk_size // (n_passes * (n_passes + 1)))
        for start in range(0, positions.size, block):
            index = positions[start : start + block]
            values[start : start + block] = self._anchor_table(index) @ vector32
        return values - conditional[positions]


#: A configuration is anchored at its most likely pass once that pass has at least this posterior mass.
_ANCHOR_SHARP = 0.5


def batch_bald(
    mc_probs: np.ndarray,
    k: int,
    rng: np.random.Generator | int | None = None,
    *,
    num_samples: int = BATCHBALD_NUM_SAMPLES,
    max_exact_configs: int | None = None,
    chunk_size: int = BATCHBALD_CHUNK_SIZE,
    prune: bool = True,
    bound_cache_bytes: int = BATCHBALD_BOUND_CACHE_BYTES,
    saturation: str = "restart",
    saturation_gain: float = BATCHBALD_SATURATION_GAIN,
    index: np.ndarray | None = None,
) -> BatchBALDResult:
    """Greedy BatchBALD (Kirsch, van Amersfoort & Gal 2019, NeurIPS), single-label only.

    ``a_BatchBALD(x_1..x_n) = I(y_1..y_n; w) = H(y_1..y_n) - sum_i E_w H(y_i | w)``,
    with ``p(y_1..y_n) = (1/T) sum_t prod_i p_i^t[y_i]`` over the T MC-dropout passes
    (``mc_probs`` (T, m, C), softmax rows). Greedy: repeatedly add the candidate that
    maximises ``a(A ∪ {x})``, ties broken by the lower ``index`` (pool index; the
    position by default); the greedy batch is a (1 - 1/e)-approximation (submodularity).

    Joint entropy of the chosen batch A plus a candidate x. Writing ``ŷ_s`` for a label
    configuration of A, ``π_s(t) ∝ prod_{i in A} p_i^t[ŷ_{s,i}]`` for its posterior over the
    passes and ``r_s = sum_t π_s(t) p_x^t`` for the conditional distribution of ``y_x``,
    ``H(y_A, y_x) = H(y_A) + sum_s ω_s H(r_s)``:

    - exact enumeration while A has at most ``max_exact_configs`` label configurations of
      nonzero probability (at most ``C^|A|``), ``ω_s = p(ŷ_s)``;
    - beyond that, Monte-Carlo as in the paper: ``num_samples`` (M) configurations of A are
      drawn from the MC samples (pass ``t_m = m mod T``, then ``ŷ_m ~ p(·|w_{t_m})``), reused
      and extended with a fresh draw of each newly chosen point, and the joint entropy is
      the importance-weighted estimate
      ``Ĥ = -sum_m ω_m sum_c [p(ŷ_m, c) / p(ŷ_m)] ln p(ŷ_m, c)`` (stratified weights
      ``ω_m ≈ 1/M``), which equals ``Ĥ(y_A) + sum_m ω_m H(r_m)``. Randomness: ``rng`` only.

    Options:

    - ``num_samples`` (M, default 1000). The authors' code (BlackHC/BatchBALD,
      ``multi_bald.py``) draws ``40000 // T`` configurations per pass (about 40,000) and
      redraws them at every step; 1000 reused configurations keep a selection at
      n = 10^5 within seconds on a CPU. Must be >= T.
    - ``max_exact_configs`` (default None = ``num_samples``: the authors' switch-over
      ``C^|A| <= M``).
    - ``chunk_size`` (default 2^21): the most (configuration x candidate x class) entries
      materialised at once; transient memory ≈ 16 bytes x ``chunk_size`` (about 32 MB)
      whatever n, M and C.
    - ``prune`` (default True): candidates are discarded by **exact upper bounds** on their
      gain before the full O(S·C·T) evaluation, so the picks are those of the full greedy
      search (up to float rounding: a candidate is discarded only when its bound is below
      the best gain found by more than 1e-5 nats). The bounds, all from the concavity of H,
      from cheap to tight: the tangent of H at ``p̄`` (O(T) per candidate; BALD in the exact
      regime; skipped once it stops pruning), Gibbs' inequality with each configuration
      anchored at its most likely pass (O(T²), see ``_Bounds``), then Jensen's inequality over
      T + 4 and 128 groups of configurations with similar posteriors
      (``sum_s ω_s H(r_s) <= sum_g Ω_g H(r̄_g)``, O(G·C·T)). After each, the 8 best-bounded
      candidates are evaluated in full to raise the incumbent. In the exact regime a gain is
      also bounded by the candidate's gain at the previous step (submodularity).
      ``prune=False`` evaluates every candidate in full (the reference).
      In the full evaluation, a configuration whose posterior puts less than 1e-10 off its most
      likely pass τ contributes ``ω_s H(p_x^τ)`` from a table computed once (``_SHARP``; the
      difference is below the float32 rounding of ``r_s``), so late steps, where almost every
      sampled posterior has collapsed onto one pass, cost O(T) per candidate for those.
    - ``bound_cache_bytes`` (default 512 MiB): the O(T²) anchor table (float32, ``m·T·(T+1)``
      entries, 168 MB at m = 10^5, T = 20) is cached when it fits, else recomputed per step
      in blocks of ``chunk_size`` (same picks, slower).
    - ``saturation`` (default ``"restart"`` [R]) and ``saturation_gain`` (default 1e-5 nats).
      ``I(y_A; w) <= ln T``: once the labels of A single out one pass (every configuration's
      posterior collapses onto one t), no candidate adds information and every gain is 0 up to
      float rounding. A step is *saturated* when the greedy maximum gain is below
      ``saturation_gain`` (decided by the upper bounds above without evaluating everyone, or
      by the full evaluation: the same steps either way, unless the best gain lies within the
      float32 rounding of a bound, about 1e-6 nats, of ``saturation_gain``). By submodularity any completion of a
      saturated batch A then scores within ``saturation_gain`` per added point of any other, the
      greedy one included, so the rule only breaks what are ties at the estimator's resolution:

      - ``"restart"``: close the sub-batch and start a new greedy BatchBALD sub-batch over the
        candidates left (its first pick is the highest BALD, as any batch's); the batch is a
        sequence of sub-batches, each as diverse as T passes can tell.
      - ``"bald"``: keep the batch and take the highest BALD among the candidates left (the
        gain is still reported, evaluated for that pick alone).
      - ``"greedy"``: no saturation rule; keep maximising gains below the resolution (the
        reference; at n = 10^5 every saturated step evaluates every candidate in full).

      A sub-batch with no pick yet is never saturated (its greedy pick is the BALD argmax,
      from :func:`bald`, exact 0 where the passes agree). If even that gain is below
      ``saturation_gain`` (rules other than ``"greedy"``), no candidate holds information at
      the resolution: the highest exact BALD is taken, and equal ones go to the lower ``index``.

    Returns a ``BatchBALDResult`` (positions along axis 1 of ``mc_probs``, best first).
    Multi-label (sigmoid) outputs are not supported (no single categorical y per example).
    The T passes must use the same dropout masks for every example (the paper's "consistent
    MC dropout"); otherwise pass t is not one draw of w shared by all examples.
    """
    source = _as_mc(mc_probs)
    n_passes, n, _ = source.shape
    k = int(min(max(int(k), 0), n))
    num_samples, max_exact, chunk_size, saturation_gain = _checked_batch_bald_options(
        n_passes, num_samples, max_exact_configs, chunk_size, saturation, saturation_gain
    )
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    tie = np.arange(n, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
    if tie.shape != (n,):
        raise ValueError(f"index must have shape ({n},), got {tie.shape}")
    if k == 0:
        return _Picks().result()

    pool = _BatchBALDPool.build(source, tie, chunk_size, prune, bound_cache_bytes)
    available = np.ones(n, dtype=bool)
    picks = _Picks()
    sub: _SubBatch | None = None  # None: start a (sub-)batch, no configuration of earlier picks yet
    sub_number = -1
    while len(picks) < k:
        if sub is None:
            sub_number += 1
            sub = _SubBatch(sub_number, _Configurations(n_passes), np.full(n, np.inf))
        step = _Step(pool, sub.configs)
        # a gain below the floor cannot make the step unsaturated: no need to find it exactly
        check = saturation != "greedy" and bool(sub.chosen_probs)
        if pool.bounds is None:
            step.evaluate(np.flatnonzero(available))
        else:
            _pruned_search(pool, sub, step, available, saturation_gain if check else -np.inf)

        saturated = check and step.best.gain < saturation_gain
        # a sub-batch's first gain is BALD: all below the resolution is an exact tie, not float noise to rank
        flat = saturation != "greedy" and not sub.chosen_probs and step.best.gain < saturation_gain
        if saturated and saturation == "restart":
            sub = None
            continue  # the same step again, as the first pick of a new sub-batch
        if saturated or flat:  # "bald" (or a flat start): the highest BALD left, its gain evaluated alone
            position = int(top_k(np.where(available, pool.bald, -np.inf), 1, index=tie)[0])
            gain = float(pool.bald[position]) if flat else float(step.evaluate(np.array([position]))[0])
        else:
            position, gain = step.best.position, step.best.gain
        available[position] = False
        # a restart's first pick counts as saturated too
        marked = saturated or flat or (sub.number > 0 and not sub.chosen_probs)
        picks.add(pool, sub, step, position, gain, marked)
        if len(picks) == k:
            break
        sub.extend(source[:, position, :].astype(np.float64), max_exact, num_samples, rng)
    return picks.result()


def _checked_batch_bald_options(
    n_passes: int,
    num_samples: int,
    max_exact_configs: int | None,
    chunk_size: int,
    saturation: str,
    saturation_gain: float,
) -> tuple[int, int, int, float]:
    """``batch_bald``'s options as numbers, ``(num_samples, max_exact, chunk_size, saturation_gain)``; one error line each."""
    num_samples = int(num_samples)
    if num_samples < n_passes:
        raise ValueError(f"num_samples must be >= the number of passes T={n_passes}, got {num_samples}")
    max_exact = num_samples if max_exact_configs is None else int(max_exact_configs)
    if max_exact < 1:
        raise ValueError(f"max_exact_configs must be >= 1, got {max_exact}")
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if saturation not in BATCHBALD_SATURATION_RULES:
        raise ValueError(f"saturation must be one of {list(BATCHBALD_SATURATION_RULES)}, got {saturation!r}")
    saturation_gain = float(saturation_gain)
    if not saturation_gain >= 0 or not np.isfinite(saturation_gain):
        raise ValueError(f"saturation_gain must be a finite number >= 0, got {saturation_gain}")
    return num_samples, max_exact, chunk_size, saturation_gain


@dataclass(frozen=True)
class _BatchBALDPool:
    """What every greedy step of ``batch_bald`` reads about the m candidates (computed once per call).

    ``probs``: the passes as float32 (T, m, C) with probabilities below ``_FLUSH`` set to 0;
    ``conditional``: ``E_w H(y_x | w)`` (m,); ``bald``: BALD (exact 0 where the passes agree;
    the ``"bald"`` rule and the bounds use it); ``pass_entropy``: ``H(p_x^t)`` (m, T) with the
    float32 arithmetic of ``_weighted_entropy``, the exact ``H(r_s)`` of a configuration
    concentrated on pass t (see ``_SHARP``); ``bounds``: the pruning tables (None: ``prune=False``);
    ``tie``: the tie-break key of each candidate.
    """

    probs: np.ndarray
    conditional: np.ndarray
    bald: np.ndarray
    pass_entropy: np.ndarray
    bounds: _Bounds | None
    tie: np.ndarray
    chunk_size: int

    @classmethod
    def build(
        cls, source: np.ndarray, tie: np.ndarray, chunk_size: int, prune: bool, bound_cache_bytes: int
    ) -> _BatchBALDPool:
        probs = np.ascontiguousarray(source, dtype=np.float32)
        tiny = probs < _FLUSH
        if tiny.any():  # no float32 subnormals (slow arithmetic); far below any resolvable entropy
            probs = np.where(tiny, np.float32(0.0), probs)
        del tiny
        conditional = expected_entropy(source)
        bald_scores = bald(source)
        bounds = _Bounds(probs, mean_probs(source), bald_scores, chunk_size, bound_cache_bytes) if prune else None
        n_passes, n, _ = source.shape
        pass_entropy = np.empty((n, n_passes), dtype=np.float64)
        for t in range(n_passes):
            pass_entropy[:, t] = _neg_plogp_sum(probs[t])
        return cls(probs, conditional, bald_scores, pass_entropy, bounds, tie, chunk_size)


class _SubBatch:
    """One greedy BatchBALD (sub-)batch: its configurations and what its steps carry over.

    ``stale``: each candidate's gain (or bound) at the previous step, an upper bound of its gain
    now while the estimate stays exact (submodularity); ``chosen_probs``: the passes (T, C) of its
    picks; ``conditional``: the sum of their ``E_w H(y|w)``; ``skip_tangent``: the tangent bound
    stopped pruning (at a saturated batch), so the next step goes straight to the anchors.
    """

    def __init__(self, number: int, configs: _Configurations, stale: np.ndarray) -> None:
        self.number = number
        self.configs = configs
        self.stale = stale
        self.chosen_probs: list[np.ndarray] = []
        self.conditional = 0.0
        self.skip_tangent = False

    def extend(self, chosen: np.ndarray, max_exact: int, num_samples: int, rng: np.random.Generator) -> None:
        """Add a pick's passes (T, C): exact enumeration while it stays small, else Monte-Carlo configurations."""
        self.chosen_probs.append(chosen)
        configs = self.configs
        if configs.exact and configs.size * chosen.shape[1] <= max_exact:
            configs.extend_exact(chosen)
        elif configs.exact:
            configs.start_sampling(self.chosen_probs, num_samples, rng)
        else:
            configs.extend_sampled(chosen, rng)


class _Step:
    """The full evaluation of gains at one greedy step, and the best gain found so far (``best``).

    ``gain(x) = sum_s ω_s H(r_s) - E_w H(y_x|w)``. Configurations whose posterior puts less than
    ``_SHARP`` off their most likely pass ("sharp") contribute ``ω_s H(p_x^τ)`` from the pool's
    ``pass_entropy`` table (O(1) per candidate); the others ("diffuse") go through ``_weighted_entropy``.
    """

    def __init__(self, pool: _BatchBALDPool, configs: _Configurations) -> None:
        self.pool = pool
        self.posteriors64 = configs.posteriors()
        self.weights = configs.weight
        self.n_configs = configs.size
        self.top_pass = np.argmax(self.posteriors64, axis=1)
        off_mass = self.posteriors64.sum(axis=1) - self.posteriors64[np.arange(configs.size), self.top_pass]
        sharp = off_mass < _SHARP
        self.sharp_mass = np.bincount(
            self.top_pass[sharp], weights=self.weights[sharp], minlength=self.posteriors64.shape[1]
        )
        self.diffuse_posteriors = self.posteriors64[~sharp].astype(np.float32)
        self.diffuse_weights = self.weights[~sharp]
        self.n_diffuse = self.diffuse_weights.size
        self.best = _Incumbent()

    def evaluate(self, positions: np.ndarray) -> np.ndarray:
        """The gains of the candidates at ``positions`` (offered to ``best``)."""
        pool = self.pool
        values = -pool.conditional[positions]
        if self.n_diffuse:
            values = values + _weighted_entropy(
                self.diffuse_posteriors, self.diffuse_weights, pool.probs, positions, pool.chunk_size
            )
        if self.n_diffuse < self.n_configs:
            values = values + pool.pass_entropy[positions] @ self.sharp_mass
        self.best.offer(values, positions, pool.tie)
        return values


def _pruned_search(pool: _BatchBALDPool, sub: _SubBatch, step: _Step, available: np.ndarray, floor: float) -> None:
    """Find the step's best gain (into ``step.best``), discarding candidates by upper bounds (see ``batch_bald``).

    Bounds from cheap to tight (``_pruning_stages``); after each, the candidates bounded below
    the incumbent (less ``_PRUNE_TOL``) or below ``floor`` are dropped and the ``_INCUMBENTS``
    best-bounded are evaluated in full. The survivors are then evaluated best bound first.
    """
    n = available.size
    bound = sub.stale.copy() if sub.configs.exact else np.full(n, np.inf)
    bound[~available] = -np.inf
    candidates = np.flatnonzero(available)
    n_classes = pool.probs.shape[2]

    def cutoff() -> float:
        return max(step.best.gain - _PRUNE_TOL, floor)

    for stage in _pruning_stages(sub, step):
        if isinstance(stage, int) and candidates.size * step.n_diffuse * n_classes <= _DIRECT:
            break  # the full evaluation of what is left is one block: cheaper than grouping
        bound[candidates] = np.minimum(bound[candidates], _stage_bound(pool, step, stage, candidates))
        candidates = candidates[bound[candidates] >= cutoff()]
        leaders = top_k(bound[candidates], _INCUMBENTS, index=pool.tie[candidates])
        bound[candidates[leaders]] = step.evaluate(candidates[leaders])
        candidates = np.delete(candidates, leaders)
        candidates = candidates[bound[candidates] >= cutoff()]
        if stage == "tangent":
            # at a saturated batch the tangent prunes little; then go straight to the anchors
            sub.skip_tangent = 2 * candidates.size > available.sum()
        if candidates.size == 0:
            break
    # the survivors, best bound first, until the bound falls below the incumbent
    candidates = candidates[np.lexsort((pool.tie[candidates], -bound[candidates]))]
    block = max(1, pool.chunk_size // (max(step.n_diffuse, step.posteriors64.shape[1]) * n_classes))
    for start in range(0, candidates.size, block):
        chunk = candidates[start : start + block]
        chunk = chunk[bound[chunk] >= cutoff()]
        if chunk.size == 0:
            break
        bound[chunk] = step.evaluate(chunk)
    sub.stale = bound


def _pruning_stages(sub: _SubBatch, step: _Step) -> list[str | int]:
    """The bounds to try at this step: ``"tangent"``, ``"anchor"``, then groupings into G configurations (ints)."""
    stages: list[str | int] = [] if sub.skip_tangent else ["tangent"]
    if step.n_configs > 1:
        stages.append("anchor")
    # grouping costs about as much per candidate as G configurations: only worth it
    # while the configurations that need the full evaluation are many more
    n_passes = step.posteriors64.shape[1]
    return stages + [g for g in (n_passes + 4, 128) if 2 * g <= step.n_diffuse]


def _stage_bound(pool: _BatchBALDPool, step: _Step, stage: str | int, candidates: np.ndarray) -> np.ndarray:
    """The upper bound of one pruning stage on the gains of ``candidates``."""
    bounds = pool.bounds
    assert bounds is not None
    if stage == "tangent":
        return bounds.tangent_bound(step.weights @ step.posteriors64)[candidates]
    if stage == "anchor":
        return bounds.anchor_bound(step.posteriors64, step.weights, candidates, pool.conditional, step.top_pass)
    # Jensen over groups of similar posteriors: sum_s ω_s H(r_s) <= sum_g Ω_g H(r̄_g)
    centers, mass = _group_posteriors(step.posteriors64, step.weights, int(stage), pool.chunk_size)
    grouped = _weighted_entropy(centers.astype(np.float32), mass, pool.probs, candidates, pool.chunk_size)
    return grouped - pool.conditional[candidates]


class _Picks:
    """The picks of ``batch_bald`` with what ``BatchBALDResult`` reports of each, in pick order."""

    def __init__(self) -> None:
        self.indices: list[int] = []
        self.gains: list[float] = []
        self.scores: list[float] = []
        self.joints: list[float] = []
        self.exact: list[bool] = []
        self.evaluated: list[int] = []
        self.saturated: list[bool] = []
        self.sub_batch: list[int] = []

    def __len__(self) -> int:
        return len(self.indices)

    def add(self, pool: _BatchBALDPool, sub: _SubBatch, step: _Step, position: int, gain: float, saturated: bool) -> None:
        """Record a pick: ``H(y_A, y_x) = H(y_A) + gain + E_w H(y_x|w)`` and ``a = H(y_A, y_x) - sum E_w H``."""
        self.indices.append(position)
        self.gains.append(gain)
        joint = sub.configs.entropy() + gain + pool.conditional[position]
        sub.conditional += pool.conditional[position]
        self.joints.append(joint)
        self.scores.append(joint - sub.conditional)
        self.exact.append(sub.configs.exact)
        self.evaluated.append(step.best.evaluated)
        self.saturated.append(saturated)
        self.sub_batch.append(sub.number)

    def result(self) -> BatchBALDResult:
        return BatchBALDResult(
            indices=np.asarray(self.indices, dtype=np.int64),
            gains=np.asarray(self.gains, dtype=np.float64),
            scores=np.asarray(self.scores, dtype=np.float64),
            joint_entropies=np.asarray(self.joints, dtype=np.float64),
            exact=np.asarray(self.exact, dtype=bool),
            evaluated=np.asarray(self.evaluated, dtype=np.int64),
            saturated=np.asarray(self.saturated, dtype=bool),
            sub_batch=np.asarray(self.sub_batch, dtype=np.int64),
        )


class _Incumbent:
    """The best (gain, tie key) seen so far in one greedy step; ties go to the lower key."""

    def __init__(self) -> None:
        self.gain = -np.inf
        self.key = np.iinfo(np.int64).max
        self.position = -1
        self.evaluated = 0

    def offer(self, values: np.ndarray, positions: np.ndarray, tie: np.ndarray) -> None:
        self.evaluated += positions.size
        if positions.size == 0:
            return
        top = int(np.lexsort((tie[positions], -values))[0])
        if values[top] > self.gain or (values[top] == self.gain and tie[positions[top]] < self.key):
            self.gain, self.key, self.position = float(values[top]), int(tie[positions[top]]), int(positions[top])
