"""Gradient-embedding strategies: BADGE and EGL (STRATEGIES.md §1.8, §1.11)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..functional import gradient as G
from ..outputs.catalog import EGL_FULL, EGL_WORD, EMBEDDINGS, PROBS
from ..rows import take_rows
from .base import Strategy, top_scored
from .options import check_choice, check_int
from .registry import register_strategy


@register_strategy("badge")
class Badge(Strategy):
    """BADGE (Ash et al. 2020; ALPS and BEAL baseline, STRATEGIES.md §1.11).

    Gradient embedding ``g_x = [(p_c - 1[ŷ=c]) h(x)]_c`` with ``ŷ = argmax p``
    (multi-label: ``g_x = [(p_j - 1[p_j > 0.5]) h(x)]_j``), never materialised:
    distances use ``<g_a, g_b> = <p_a - ŷ_a, p_b - ŷ_b><h_a, h_b>``. The query is
    the k-means++ seeding (KMEANSPP_SEED, §0) of the unlabeled ``g``, in pick
    order; L is not used.

    Options:

    - ``variant="original"`` (default): badge's code — first center
      ``argmax ||g||``, then ``P ∝ D²``.
    - ``variant="alps"``: ALPS's code — ``g`` L2-normalised first and the first
      center uniform at random.

    - ``precision="float64"`` (default) or ``"float32"``: the dtype of the
      (n, d) embedding copy and of the per-pick products ``<h_i, h_b>`` (float32
      halves memory and time; see ``kmeanspp_seed_factored`` for the error).

    When every remaining ``D`` is 0 (e.g. all gradient norms are 0) the rest of
    the batch is drawn uniformly at random from the unchosen points.
    """

    needs = frozenset({PROBS, EMBEDDINGS})
    requires_trained_model = True

    def __init__(
        self, *, multi_label: bool = False, variant: str = "original", precision: str = "float64"
    ) -> None:
        super().__init__(multi_label=multi_label)
        self.variant = check_choice("badge", "variant", variant, G.BADGE_VARIANTS)
        self.precision = check_choice("badge", "precision", precision, G.BADGE_PRECISIONS)

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        probs = take_rows(outputs[PROBS], unlabeled, np.float64)
        embeddings = take_rows(outputs[EMBEDDINGS], unlabeled)
        positions = G.badge_select(
            probs, embeddings, budget, rng, multi_label=self.multi_label, variant=self.variant, precision=self.precision
        )
        return unlabeled[positions]


_EGL_VARIANTS = ("head", "full", "word")
_EGL_EXPECTATIONS = ("closed_form", "monte_carlo")


@register_strategy("egl")
class ExpectedGradientLength(Strategy):
    """Expected Gradient Length ``EGL(x) = Σ_c p_c(x) ||∇_θ ℓ_CE(x, c)||_2``, top-k (§1.8).

    Settles et al. 2008; IBM (Ein-Dor et al. 2020), MII and ALDEN baseline.

    Options:

    - ``variant`` — the parameter set θ (IBM does not say which; [R]):

      - ``"head"`` (default): the last linear layer ``(W, b)``, in closed form
        ``||p - e_c|| sqrt(||h||² + 1)`` from ``probs`` and ``embeddings``; O(n(C+d)).
      - ``"full"``: every trainable parameter; reads the model-side output
        ``egl_full`` (n,).
      - ``"word"``: EGL-word (Zhang et al. 2017), the max over the input
        word-embedding rows of the example's tokens; reads ``egl_word`` (n,).

      The exact semantics of ``egl_full`` / ``egl_word`` are in
      ``lit_al.functional.gradient.EGL_FULL`` (comment above it) and ``EGL_OUTPUTS``.
    - ``norm="l2"`` (default, the paper's ``||·||_2``) or ``"squared"``
      (``||·||_2²``, as dsgissin's code). small-text's implementation takes an
      L1 norm by mistake; that is not offered.
    - Multi-label (``ℓ = Σ_j BCE``, ``y_j ~ Bernoulli(p_j)`` independent):

      - ``multi_label_expectation="closed_form"`` (default, head only): the exact
        ``E||∇_{W,b}||² = (||h||² + 1) Σ_j p_j(1 - p_j)``; the score is its square
        root for ``norm="l2"`` (root-mean-square length, not ``E||∇||``) and the
        value itself for ``norm="squared"`` — the same ranking either way.
        ``"monte_carlo"`` estimates ``E||∇||`` (or ``E||∇||²``) with
        ``egl_samples`` draws of y from the strategy's seeded generator.
      - ``egl_samples=10``: Monte-Carlo draws of y, for the head with
        ``"monte_carlo"`` and always for ``"full"``/``"word"`` (passed to the
        model side as a prediction option).
    """

    needs = frozenset({PROBS, EMBEDDINGS})
    requires_trained_model = True

    def __init__(
        self,
        *,
        multi_label: bool = False,
        variant: str = "head",
        norm: str = "l2",
        egl_samples: int = 10,
        multi_label_expectation: str = "closed_form",
    ) -> None:
        super().__init__(multi_label=multi_label)
        self.variant = check_choice("egl", "variant", variant, _EGL_VARIANTS)
        self.norm = check_choice("egl", "norm", norm, G.EGL_NORMS)
        self.egl_samples = check_int("egl", "egl_samples", egl_samples)
        self.multi_label_expectation = check_choice(
            "egl", "multi_label_expectation", multi_label_expectation, _EGL_EXPECTATIONS
        )
        # The outputs to read depend on the variant, so ``needs`` is per instance
        # (the base class only ever reads ``self.needs``).
        if variant == "full":
            self.needs = frozenset({EGL_FULL})
        elif variant == "word":
            self.needs = frozenset({EGL_WORD})

    def prediction_options(self) -> dict[str, Any]:
        if self.variant == "head":
            return {}
        options: dict[str, Any] = {"egl_norm": self.norm}
        if self.multi_label:
            options["egl_samples"] = self.egl_samples
        return options

    def scores(self, outputs: Mapping[str, np.ndarray], rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """EGL of the pool rows ``rows`` (higher = queried first)."""
        if self.variant == "full":
            return np.asarray(outputs[EGL_FULL][rows], dtype=np.float64).reshape(-1)
        if self.variant == "word":
            return np.asarray(outputs[EGL_WORD][rows], dtype=np.float64).reshape(-1)
        probs = np.asarray(outputs[PROBS][rows], dtype=np.float64)
        embeddings = np.asarray(outputs[EMBEDDINGS][rows], dtype=np.float64)
        if not self.multi_label:
            return G.egl_head(probs, embeddings, norm=self.norm)
        return G.egl_head_multilabel(
            probs,
            embeddings,
            norm=self.norm,
            expectation=self.multi_label_expectation,
            samples=self.egl_samples,
            rng=rng,
        )

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        scores = self.scores(outputs, unlabeled, rng)
        return top_scored(scores, unlabeled, budget)
