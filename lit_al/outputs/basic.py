"""Outputs of one plain forward pass: ``probs``, ``embeddings``, ``cls_hidden``, ``pretrained_embeddings``."""

from __future__ import annotations

from .catalog import CLS_HIDDEN, EMBEDDINGS, PRETRAINED_EMBEDDINGS, PROBS
from .forward import pretrained_encoder
from .registry import register_output


@register_output(PROBS)
def probs_output(module, batch, request, cache):
    """(B, C) softmax (single-label) or sigmoid (multi-label) probabilities."""
    return module.probabilities(cache.logits)


@register_output(EMBEDDINGS)
def embeddings_output(module, batch, request, cache):
    """(B, d') the penultimate representation h(x), input of the final linear layer."""
    return cache.features


@register_output(CLS_HIDDEN)
def cls_hidden_output(module, batch, request, cache):
    """(B, d) the last-layer [CLS] hidden state."""
    return cache.encoder_output.last_hidden_state[:, 0]


@register_output(PRETRAINED_EMBEDDINGS)
def pretrained_embeddings_output(module, batch, request, cache):
    """(B, d) the sentence representation (same pooling) of the frozen pre-trained encoder θ0."""
    encoder = pretrained_encoder(module)
    output = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return module.sentence_representation(output, batch["attention_mask"])
