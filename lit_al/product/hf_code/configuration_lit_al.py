"""Configuration of a text classifier exported by lit_al (``trust_remote_code``; needs torch and transformers only).

The encoder's own configuration is kept as a dictionary (``encoder``, with its
``model_type``); the head is described by ``pooling``, ``head_hidden_size``,
``head_activation`` and ``head_dropout``. Labels, ``problem_type`` and the rest are the
standard ``PretrainedConfig`` fields.
"""

from transformers import PretrainedConfig


class LitAlClassifierConfig(PretrainedConfig):
    """The encoder's configuration (a dict with its ``model_type``) and the head's shape."""

    model_type = "lit_al_text_classifier"

    def __init__(self, encoder=None, pooling="cls", head_hidden_size=None, head_activation="relu", head_dropout=0.1,
                 threshold=0.5, **kwargs):
        self.encoder = dict(encoder or {})
        self.pooling = pooling
        self.head_hidden_size = head_hidden_size
        self.head_activation = head_activation
        self.head_dropout = head_dropout
        self.threshold = threshold
        super().__init__(**kwargs)
