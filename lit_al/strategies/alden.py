"""ALDEN, Active Learning with DivErse iNterpretations (STRATEGIES.md §1.16) — a RECONSTRUCTION.

ALDEN's method section is not available: the seed text ends after the
introduction and no code was released. This strategy reconstructs the method
from the paper's own summary (local interpretations are gradients of the
prediction with respect to the inputs; the word with the most diverse
interpretation represents a sentence; the most diverse samples are queried).
Every detail below is a reasoned choice ([R]), not the paper's; results from it
must not be reported as ALDEN's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import StrategyError
from ..functional import interpretation as I
from ..functional.ranking import top_k
from ..index import kcenter_greedy
from ..outputs.catalog import ALDEN_EMBEDDING_POINTS, ALDEN_INTERPRETATION, ALDEN_TARGETS
from .base import Strategy
from .options import check_bool, check_choice
from .registry import register_strategy

#: Contract of the ``alden_interpretation`` output, for the model side that computes it.
ALDEN_INTERPRETATION_SPEC = """\
alden_interpretation: float array of shape (n, D), one row per predicted example,
D = d ("target": "predicted") or C·d ("target": "all_logits"; C = number of classes,
or of labels J in multi-label). Options: prediction_options()["alden_interpretation"],
a dict with keys "target", "embedding_point", "normalize", "subword_aggregate".

Per batch, with the model fine-tuned on the current labeled set, in eval mode:
1. e_t = the input embedding of token t:
   "embedding_point": "word"            -> the word-embedding lookup output, BEFORE the
                                            position/token-type embeddings are added;
                      "after_layernorm" -> the output of the embeddings LayerNorm
                                            (word + position + type, normalised).
   Make e (B, ℓ, d) a leaf that requires grad and run the rest of the model from it.
2. Gradients of LOGITS (pre-softmax / pre-sigmoid), not probabilities:
   "target": "predicted"  -> g_t = d z_ŷ / d e_t, ŷ = argmax of the example's logits
                             (single-label only). Examples do not interact in eval
                             mode, so one backward of sum_b z[b, ŷ_b] gives every row.
             "all_logits" -> for c = 0..C-1 the gradient of sum_b z[b, c]; stack to
                             (B, ℓ, C, d) and flatten to (B, ℓ, C·d), index c·d + i.
   token_grads: (B, ℓ, D).
3. mask (B, ℓ): attention_mask with every special token ([CLS], [SEP], ... as in the
   tokenizer's special_tokens_mask) set to 0.
   "subword_aggregate": "none" -> word pieces are the tokens;
                        "sum" | "max" -> token_grads, mask = aggregate_subwords(
                            token_grads, word_ids, mode) with word_ids (B, ℓ) the
                            tokenizer's word ids (-1 on special and pad positions).
4. row = select_token_interpretations(token_grads, mask, reference, normalize)
   (lit_al.functional.interpretation), normalize = the "normalize" option.

TWO PASSES (reference): the LABELED rows are computed first with reference=None
(each labeled example is represented by its largest-gradient-norm token). Their
rows, gathered from every process, form Z_L (r, D). The UNLABELED rows are then
computed with reference=Z_L (the token whose interpretation is farthest from Z_L).
Every labeled row must be finished before the first unlabeled row, e.g. two
trainer.predict runs (labeled, then unlabeled with Z_L attached to the request),
or one run over two dataloaders [labeled, unlabeled] with an all_gather of Z_L at
the switch. With no labeled rows, reference=None is used for every row.
"""

VARIANTS = ("kcenter", "topk")


@register_strategy("alden")
class ALDEN(Strategy):
    """ALDEN reconstruction (STRATEGIES.md §1.16 [R]; the paper's method section is unavailable).

    Each example is represented by one local interpretation ``z(x)``, the
    ``alden_interpretation`` output (see ``ALDEN_INTERPRETATION_SPEC``): for an
    unlabeled x, the input-gradient ``g_t = ∂z_ŷ/∂e_t`` of the token whose
    (normalised) gradient is farthest from ``Z_L``; for a labeled x, the token with
    the largest gradient norm, these rows forming ``Z_L``.

    Selection (``variant``):

    - ``"kcenter"`` (default [R]): ``KCENTER({z(x)}_U, Z_L, k)``, greedy farthest-first
      with within-batch updates (``lit_al.index.kcenter_greedy``).
    - ``"topk"``: the k largest ``div(z(x)) = min_{z∈Z_L} ||z(x) − z||_2``, no updates
      (ties by the lower pool index).

    Options passed to the model side (``prediction_options()["alden_interpretation"]``):

    - ``target``: ``"predicted"`` (the predicted-class logit, D = d) or ``"all_logits"``
      (full Jacobian, D = C·d). Default None = ``"predicted"`` for single-label and
      ``"all_logits"`` for multi-label ("interpretations of each label logit" [R]);
      ``"predicted"`` is refused for multi-label (there is no single predicted label).
    - ``embedding_point``: ``"word"`` (default; before position embeddings) or
      ``"after_layernorm"`` (after the embedding LayerNorm).
    - ``normalize``: L2-normalise each gradient (default True, the §1.16 pitfall
      advice; Euclidean distance on unit vectors is the cosine variant).
    - ``subword_aggregate``: ``"none"`` (default: word pieces are tokens [R]),
      ``"sum"`` or ``"max"`` (needs the tokenizer's word ids on the model side).
    """

    needs = frozenset({ALDEN_INTERPRETATION})
    predict_labeled = True
    requires_trained_model = True

    def __init__(
        self,
        *,
        multi_label: bool = False,
        variant: str = "kcenter",
        target: str | None = None,
        embedding_point: str = "word",
        normalize: bool = True,
        subword_aggregate: str = "none",
    ) -> None:
        super().__init__(multi_label=multi_label)
        self.variant = check_choice("alden", "variant", variant, VARIANTS)
        if target is None:
            target = "all_logits" if multi_label else "predicted"
        self.target = check_choice("alden", "target", target, ALDEN_TARGETS)
        if multi_label and target == "predicted":
            raise StrategyError("alden: target='predicted' is undefined for multi-label tasks; use target='all_logits'")
        self.embedding_point = check_choice("alden", "embedding_point", embedding_point, ALDEN_EMBEDDING_POINTS)
        self.normalize = check_bool("alden", "normalize", normalize)
        self.subword_aggregate = check_choice("alden", "subword_aggregate", subword_aggregate, I.SUBWORD_AGGREGATES)

    def prediction_options(self) -> dict[str, Any]:
        return {
            ALDEN_INTERPRETATION: {
                "target": self.target,
                "embedding_point": self.embedding_point,
                "normalize": self.normalize,
                "subword_aggregate": self.subword_aggregate,
            }
        }

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        if labeled.size == 0:
            raise StrategyError("strategy 'alden' needs labeled examples: their interpretations are the reference set Z_L")
        z = outputs[ALDEN_INTERPRETATION]
        # float32, as stored: with target="all_logits" D = C·d and a float64 pool copy would double memory
        z_labeled = np.asarray(z[labeled], dtype=np.float32)
        z_pool = np.asarray(z[unlabeled], dtype=np.float32)
        if self.variant == "kcenter":
            positions = np.asarray(kcenter_greedy(z_pool, z_labeled, budget, rng), dtype=np.int64)
            return unlabeled[positions]
        div = I.sentence_diversity(z_pool, z_labeled)
        return unlabeled[top_k(div, budget, index=unlabeled)]
