"""MII: Margin + Intra-correlation + Inter-correlation, and its ablations (STRATEGIES.md §1.14).

Registered names:

- ``mii``: the k smallest ``f_u · R_intra + inter_sign · R_inter`` (Eq. 14).
- ``mii_intra``: the k smallest ``R_intra`` (Table 3 "Intra" [R]).
- ``mii_inter``: the k smallest ``inter_sign · R_inter``; with the default
  ``inter_sign = −1`` that is the k largest ``R_inter`` (Table 3 "Inter", per Eq. 14 [R]).

The "Margin" ablation is the ``margin`` strategy (§1.3).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import StrategyError
from ..functional import attention as A
from ..functional import uncertainty as U
from ..functional.ranking import top_k
from ..outputs.catalog import ATTENTION_INTRA, CLS_HIDDEN, LABELS, PROBS
from .base import Strategy
from .options import check_choice
from .registry import register_strategy

#: Output name of the per-example attention intra-correlation.

#: Contract of the ``attention_intra`` output, for the model side that computes it.
ATTENTION_INTRA_SPEC = """\
attention_intra: float array of shape (n,), one value per predicted example.
Value: lit_al.functional.attention.attention_intra(attn, attention_mask, mode) for
that example, where attn (B, heads, ℓ, ℓ) are the softmax attention probabilities
of the LAST encoder layer of the model fine-tuned on the current labeled set (eval
mode, no dropout; all heads), and attention_mask (B, ℓ) is the tokenizer's mask
(1 on every real token, [CLS] and [SEP] included, 0 on padding).
mode = prediction_options()["attention_intra"], one of "column_sum" (default) or
"row_sum". Compute it per batch inside predict_step and keep only the (B,) result.
"""


def _check_inter_sign(strategy: str, value: Any) -> int:
    """The ``inter_sign`` option, -1 or +1 (``bool`` refused), as an ``int``."""
    expected = "-1 (paper Eq. 14) or +1 (paper prose)"
    return int(check_choice(strategy, "inter_sign", value, (-1, 1), expected=expected))


def _inter(strategy: Strategy, outputs: Mapping[str, np.ndarray], labeled: np.ndarray, unlabeled: np.ndarray) -> np.ndarray:
    """``R_inter`` of the unlabeled rows against the class centers of the labeled rows of ``cls_hidden``."""
    centers, _ = A.class_centers(outputs[CLS_HIDDEN], outputs[LABELS], labeled)
    if centers.shape[0] == 0:
        raise StrategyError(f"strategy {strategy.name!r} needs at least one labeled example with a known positive label")
    return A.inter_correlation(outputs[CLS_HIDDEN][unlabeled], centers)


@register_strategy("mii")
class MII(Strategy):
    """MII (STRATEGIES.md §1.14): select the k smallest ``f_u(x) · R_intra(x) + inter_sign · R_inter(x)``.

    - ``f_u``: top-1 minus top-2 probability (multi-label: ``min_j |2 p_j − 1|`` [R]).
    - ``R_intra``: the ``attention_intra`` output (see ``ATTENTION_INTRA_SPEC``): the
      head-averaged variance of per-token attention sums of the fine-tuned model's
      last layer. ``intra="column_sum"`` (default, [R]) sums the attention each token
      receives; ``intra="row_sum"`` is the paper's literal row sum, identically 0 for
      softmax attention (exactly 0 below the rounding resolution, see
      ``functional.attention.attention_intra``; kept for fidelity only; MII then reduces
      to ``inter_sign · R_inter``).
    - ``R_inter = max_c cos(X_LL(x), X_LL^c)``, ``X_LL`` = ``cls_hidden`` (last-layer [CLS]
      state, [R]); centers = the mean ``cls_hidden`` of the labeled examples of each class
      (multi-label: of each label's positives), classes without labeled examples skipped,
      labeled rows with NaN labels ignored [R].
    - ``inter_sign = −1`` (default): the paper's Eq. 14, ``f_u·R_intra − R_inter``;
      ``+1``: the paper's prose (similar-to-center points are redundant).

    Needs ``probs``, ``cls_hidden``, ``attention_intra`` on labeled rows too (the
    centers come from labeled ``cls_hidden``) and ``labels``. No term is normalised
    (the paper specifies none). Ties break by the lower pool index.
    """

    needs = frozenset({PROBS, CLS_HIDDEN, ATTENTION_INTRA})
    predict_labeled = True
    uses_labels = True
    requires_trained_model = True

    def __init__(self, *, multi_label: bool = False, intra: str = "column_sum", inter_sign: int = -1) -> None:
        super().__init__(multi_label=multi_label)
        self.intra = check_choice("mii", "intra", intra, A.ATTENTION_INTRA_MODES)
        self.inter_sign = _check_inter_sign("mii", inter_sign)

    def prediction_options(self) -> dict[str, Any]:
        return {ATTENTION_INTRA: self.intra}

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        probs = np.asarray(outputs[PROBS][unlabeled], dtype=np.float64)
        f_u = U.multilabel_margin(probs, "min") if self.multi_label else U.margin(probs)
        intra = np.asarray(outputs[ATTENTION_INTRA][unlabeled], dtype=np.float64)
        inter = _inter(self, outputs, labeled, unlabeled)
        scores = A.mii_score(f_u, intra, inter, self.inter_sign)
        return unlabeled[top_k(scores, budget, largest=False, index=unlabeled)]


@register_strategy("mii_intra")
class MIIIntra(Strategy):
    """MII ablation "Intra" (Table 3): the k smallest ``R_intra`` (STRATEGIES.md §1.14 [R]).

    ``R_intra`` is the ``attention_intra`` output (``ATTENTION_INTRA_SPEC``);
    ``intra`` as in ``mii`` (default ``"column_sum"`` [R]). ``"row_sum"`` (the paper's
    literal wording) is 0 for every example: softmax rows sum to 1, and
    ``functional.attention.attention_intra`` returns exactly 0 below the rounding
    resolution ``(ℓ·ε)²`` of those sums, so every score ties and the selection is the
    ``budget`` lowest unlabeled pool indices. Ties break by the lower pool index.
    """

    needs = frozenset({ATTENTION_INTRA})
    requires_trained_model = True

    def __init__(self, *, multi_label: bool = False, intra: str = "column_sum") -> None:
        super().__init__(multi_label=multi_label)
        self.intra = check_choice("mii_intra", "intra", intra, A.ATTENTION_INTRA_MODES)

    def prediction_options(self) -> dict[str, Any]:
        return {ATTENTION_INTRA: self.intra}

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        intra = np.asarray(outputs[ATTENTION_INTRA][unlabeled], dtype=np.float64)
        return unlabeled[top_k(intra, budget, largest=False, index=unlabeled)]


@register_strategy("mii_inter")
class MIIInter(Strategy):
    """MII ablation "Inter" (Table 3): the k smallest ``inter_sign · R_inter`` (STRATEGIES.md §1.14 [R]).

    With the default ``inter_sign = −1`` (Eq. 14) this is the k LARGEST
    ``R_inter = max_c cos(cls_hidden(x), center_c)``; ``+1`` takes the k smallest.
    Centers as in ``mii`` (labeled ``cls_hidden`` and ``labels``). Ties break by the
    lower pool index.
    """

    needs = frozenset({CLS_HIDDEN})
    predict_labeled = True
    uses_labels = True
    requires_trained_model = True

    def __init__(self, *, multi_label: bool = False, inter_sign: int = -1) -> None:
        super().__init__(multi_label=multi_label)
        self.inter_sign = _check_inter_sign("mii_inter", inter_sign)

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        inter = _inter(self, outputs, labeled, unlabeled)
        return unlabeled[top_k(self.inter_sign * inter, budget, largest=False, index=unlabeled)]
