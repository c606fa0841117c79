"""A text classifier exported by lit_al, loadable with ``trust_remote_code=True`` (needs torch and transformers only).

``logits = out(dropout(h(pool(encoder(x)))))`` where ``pool`` is the last-layer first-token
state (``cls``), the encoder's pooler output (``pooled``) or the mask-aware mean of the last
layer (``mean``), and ``h`` is the identity or ``act(W_h dropout(r) + b_h)`` with a hidden
layer. Parameter names are those of lit_al's ``TextClassifier`` (``encoder.*``, ``head.*``).
"""

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_lit_al import LitAlClassifierConfig

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class LitAlClassificationHead(nn.Module):
    """Dropout + linear over the sentence representation, with an optional hidden layer before it."""

    def __init__(self, in_dim, num_labels, dropout, hidden_size=None, activation="relu"):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.hidden = nn.Sequential(nn.Linear(in_dim, hidden_size), ACTIVATIONS[activation]()) if hidden_size else None
        self.out = nn.Linear(hidden_size or in_dim, num_labels)

    def forward(self, representation):
        features = representation if self.hidden is None else self.hidden(self.dropout(representation))
        return self.out(self.dropout(features))


class LitAlForSequenceClassification(PreTrainedModel):
    """An encoder (built from ``config.encoder``), a pooling and the head; returns ``SequenceClassifierOutput``."""

    config_class = LitAlClassifierConfig
    base_model_prefix = "encoder"

    def __init__(self, config):
        super().__init__(config)
        encoder = dict(config.encoder)
        encoder_config = AutoConfig.for_model(encoder.pop("model_type"), **encoder)
        self.encoder = AutoModel.from_config(encoder_config)
        self.head = LitAlClassificationHead(encoder_config.hidden_size, config.num_labels, config.head_dropout,
                                            config.head_hidden_size, config.head_activation)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        # token_type_ids and the like are left to the encoder's defaults, as lit_al trained it
        output = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        pooling = self.config.pooling
        if pooling == "cls":
            representation = output.last_hidden_state[:, 0]
        elif pooling == "pooled":
            representation = output.pooler_output
        else:
            mask = attention_mask.unsqueeze(-1).to(output.last_hidden_state.dtype)
            representation = (output.last_hidden_state * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        logits = self.head(representation)
        loss = None
        if labels is not None:
            if self.config.problem_type == "multi_label_classification":
                loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
            else:
                loss = nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)
