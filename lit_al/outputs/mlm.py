"""Output ``surprisal``: ALPS's masked-LM surprisal embedding (Yuan et al. 2020, EMNLP; STRATEGIES.md §1.13).

The contract is ``lit_al.strategies.geometry.SURPRISAL``. For an example with
token ids ``w`` (the classifier's tokenization, [CLS]/[SEP] included) and the
pre-trained masked LM θ0 named by the prediction option ``mlm_model``::

    m_i ~ Bernoulli(token_rate)        i.i.d. per position i < ℓ; 0 on special tokens and padding
    s_i = −ln softmax(MLM_θ0(w)_i)[w_i]  if m_i = 1, else 0

with the UNMASKED input fed to the MLM (the paper's default; masking was worse,
ALPS Table 4). The row has ℓ = ``max_length`` entries (default 128), position i
of the row being token i of the input padded to ℓ, so rows of every batch align.

"Special tokens" are the classifier tokenizer's ``all_special_ids`` ([CLS], [SEP], and
also [UNK], [MASK], [PAD]), exactly what HF's ``get_special_tokens_mask`` (used by
``DataCollatorForLanguageModeling`` in the ALPS code) excludes.

Choices, all deterministic:

- The Bernoulli draw of an example comes from its own ``torch.Generator`` seeded by
  (request seed, pool index): ℓ uniforms ``u``, ``m_i = [u_i < token_rate]``. The
  draw depends neither on the batch, nor on the batch's padding width, nor on the
  number of processes.
- Vocabulary logits are computed only at the sampled rows: the MLM's encoder gives
  the hidden states, the sampled positions are gathered, and only those rows go
  through the MLM head (for ``BertForMaskedLM``, ``model.cls``), so the V-sized
  work is ``token_rate`` of a full MLM pass. Architectures whose head is not one
  child module next to the encoder fall back to the full logits, then gather.
- Inputs wider than ℓ (the data's ``max_length`` above ALPS's) are truncated as the
  tokenizer would at ℓ: the first ℓ − 1 tokens, then the row's closing special
  token ([SEP]) if it has one.
- The MLM must share the classifier's vocabulary (its tokenizer's ``get_vocab()``
  equals that of the classifier's tokenizer, the one at the classifier's model path
  that tokenized the pool), because the ids are the classifier's; a
  different vocabulary is refused rather than re-tokenized, which keeps the
  positions aligned with the classifier's tokens by construction. (bert-base-uncased
  and all-MiniLM-L6-v2 share one vocabulary.)
- A model without trained masked-LM head weights is refused: a randomly initialised
  head would give meaningless surprisal without any error.

The MLM is loaded once per classifier module (frozen, eval mode) and is not a
submodule, so it is neither trained nor saved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import LitAlError, StrategyError
from ..hub import resolve_model_path
from ..seeding import derive_seed
from .catalog import SURPRISAL, PredictionRequest
from .forward import Classifier, ForwardCache, cached_on_module, classifier_tokenizer, special_token_ids
from .registry import register_output

log = logging.getLogger(__name__)


@dataclass
class MaskedLM:
    """A loaded, frozen masked LM and what the surprisal computer needs to know about it."""

    model: nn.Module
    encoder: nn.Module
    #: The module mapping last hidden states to vocabulary logits, or None (use the full forward).
    head: nn.Module | None
    #: Ids that are never sampled: every special token of the classifier's tokenizer.
    special_ids: torch.Tensor


def _head_module(model: nn.Module, encoder: nn.Module) -> nn.Module | None:
    """The one child of ``model`` besides ``encoder`` that holds parameters and the output embeddings, if any."""
    output_embeddings = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    others = [
        child for child in model.children()
        if child is not encoder and any(True for _ in child.parameters())
    ]
    if output_embeddings is None or len(others) != 1:
        return None
    head = others[0]
    return head if any(sub is output_embeddings for sub in head.modules()) else None


def load_masked_lm(module: Classifier, name: str) -> MaskedLM:
    """Load ``name`` as a frozen masked LM, once per classifier module (see the module docstring for the checks)."""
    return cached_on_module(module, f"masked_lm:{name}", lambda: _load_masked_lm(module, name))


def _load_masked_lm(module: Classifier, name: str) -> MaskedLM:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    try:
        path = resolve_model_path(name)
    except LitAlError as exc:
        raise StrategyError(f"alps: option mlm_model {name!r}: {exc}") from None
    trust = bool(getattr(module.hparams, "trust_remote_code", False))
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True, trust_remote_code=trust)
    except (OSError, ValueError) as exc:
        raise StrategyError(f"alps: option mlm_model {name!r}: cannot load a masked LM: {exc}".splitlines()[0]) from None
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        # weights from_pretrained had to initialise at random: surprisal from them would be noise
        prefix = f"{getattr(model, 'base_model_prefix', '')}."
        head_keys = [key for key in missing if not key.startswith(prefix)]
        shown = ", ".join((head_keys or missing)[:4]) + (", …" if len(head_keys or missing) > 4 else "")
        what = "has no masked-LM head weights" if head_keys else "lacks encoder weights"
        raise StrategyError(
            f"alps: the model {name!r} {what} ({shown} missing); give a masked-LM model "
            "such as bert-base-uncased via strategy option mlm_model"
        )
    try:
        mlm_tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust)
        tokenizer = classifier_tokenizer(module)
    except (OSError, ValueError) as exc:
        raise StrategyError(f"alps: cannot load the tokenizers to compare vocabularies: {exc}".splitlines()[0]) from None
    if mlm_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise StrategyError(
            f"alps: the masked LM {name!r} has a different vocabulary ({len(mlm_tokenizer)} tokens) from the "
            f"classifier's tokenizer ({len(tokenizer)} tokens, {module.model_path}); surprisal is computed "
            "on the classifier's token ids, so give an mlm_model with the same vocabulary"
        )
    model.to(module.device).eval()
    model.requires_grad_(False)
    encoder = model.base_model
    head = _head_module(model, encoder)
    if head is None:
        log.info("alps: %s: no separable MLM head; computing full-vocabulary logits", name)
    return MaskedLM(model, encoder, head, special_token_ids(module, module.device))


def sample_positions(seed: int, pool_index: torch.Tensor, length: int, rate: float) -> torch.Tensor:
    """(B, length) bool: ``u_i < rate`` with ``u`` drawn from a generator seeded by (seed, pool index) per example."""
    rows = []
    for index in pool_index.tolist():
        generator = torch.Generator().manual_seed(derive_seed(seed, "alps-surprisal", int(index)))
        rows.append(torch.rand(length, generator=generator) < rate)
    if not rows:
        return torch.zeros((0, length), dtype=torch.bool)
    return torch.stack(rows)


def surprisal_rows(
    lm: MaskedLM, input_ids: torch.Tensor, attention_mask: torch.Tensor, pool_index: torch.Tensor,
    seed: int, rate: float, length: int,
) -> torch.Tensor:
    """(B, length) surprisal rows (see the module docstring); float32 on the input's device."""
    device = next(lm.model.parameters()).device
    batch = input_ids.shape[0]
    special_ids = lm.special_ids.to(device)
    ids, mask = truncate_like_tokenizer(input_ids.to(device), attention_mask.to(device), special_ids, length)
    width = ids.shape[1]
    sampled = sample_positions(seed, pool_index.cpu(), length, rate)[:, :width].to(device)
    sampled &= mask.bool() & ~torch.isin(ids, special_ids)
    out = torch.zeros((batch, length), dtype=torch.float32, device=device)
    if not bool(sampled.any()):
        return out.to(input_ids.device)
    if lm.head is not None:
        hidden = lm.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        logits = lm.head(hidden[sampled])  # (N, V): only the sampled positions
    else:
        logits = lm.model(input_ids=ids, attention_mask=mask).logits[sampled]
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    targets = ids[sampled]
    out[:, :width][sampled] = -log_probs.gather(1, targets[:, None]).squeeze(1)
    return out.to(input_ids.device)


def truncate_like_tokenizer(
    ids: torch.Tensor, mask: torch.Tensor, special_ids: torch.Tensor, length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a right-padded batch to ``length`` columns as the tokenizer truncates at ``length`` tokens.

    A row longer than ``length`` keeps its first ``length − 1`` tokens and then its
    closing token when that is a special token ([SEP] for BERT: ``[CLS] w_1 … w_{ℓ−2} [SEP]``);
    otherwise its first ``length`` tokens.
    """
    if ids.shape[1] <= length:
        return ids, mask
    lengths = mask.sum(dim=1)
    cut_ids, cut_mask = ids[:, :length].clone(), mask[:, :length].clone()
    long_rows = torch.nonzero(lengths > length).flatten()
    if long_rows.numel():
        closing = ids[long_rows, lengths[long_rows] - 1]
        is_special = torch.isin(closing, special_ids)
        cut_ids[long_rows[is_special], length - 1] = closing[is_special]
    return cut_ids, cut_mask


@register_output(SURPRISAL)
def surprisal_output(
    module: Classifier, batch: dict[str, torch.Tensor], request: PredictionRequest, cache: ForwardCache
) -> torch.Tensor:
    """(B, max_length) ALPS surprisal rows of the frozen masked LM ``mlm_model`` (options: see the module docstring)."""
    name = request.options.mlm_model
    if not name:
        raise StrategyError("alps: option mlm_model (a masked-LM name or path) is required to compute surprisal")
    rate, length = float(request.options.token_rate), request.options.max_length
    if "pool_index" not in batch:
        raise StrategyError("alps: surprisal needs the batch's pool_index to seed each example's token sample")
    lm = load_masked_lm(module, name)
    return surprisal_rows(lm, batch["input_ids"], batch["attention_mask"], batch["pool_index"], request.seed, rate, length)
