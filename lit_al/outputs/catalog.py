"""The catalogue of per-example outputs: names, row shapes, flags and typed options (torch-free).

Strategies name what they need from this catalogue (``needs``); the computers in
this package register against it (``registry.register_output``), so a strategy
or computer naming an output that is not catalogued fails at import. Nothing here
imports torch or Lightning: a strategy can be built and validated without them.

Flags:

- ``gradients``: the computer takes gradients inside ``predict_step``, so the pool
  is scored by a Trainer built with ``inference_mode=False``.
- ``reference``: the unlabeled rows are computed relative to the labeled rows'
  values of the same output (ALDEN's ``Z_L``); the labeled rows are scored in a
  pass of their own first, and the unlabeled pass receives them as
  ``PredictionRequest.reference``.
- ``sample_axis``: rows carry a leading sample axis (T, ...) that the array API
  puts first: the strategy sees (T, n, ...) with the pool index on axis 1.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ..errors import StrategyError

PROBS = "probs"
EMBEDDINGS = "embeddings"
CLS_HIDDEN = "cls_hidden"
PRETRAINED_EMBEDDINGS = "pretrained_embeddings"
MC_PROBS = "mc_probs"
ATTENTION_INTRA = "attention_intra"
SURPRISAL = "surprisal"
EGL_FULL = "egl_full"
EGL_WORD = "egl_word"
ALDEN_INTERPRETATION = "alden_interpretation"
#: Not predicted: 0/1 label rows of the labeled examples (NaN elsewhere), added by ``PoolScorer.score_for``.
LABELS = "labels"


@dataclass(frozen=True)
class OutputSpec:
    """One catalogued output: its name, the shape of one example's row, and its flags."""

    name: str
    row_shape: str
    description: str
    gradients: bool = False
    reference: bool = False
    sample_axis: bool = False


CATALOG: dict[str, OutputSpec] = {
    spec.name: spec
    for spec in (
        OutputSpec(PROBS, "(C,)", "softmax (single-label) or sigmoid (multi-label) probabilities"),
        OutputSpec(EMBEDDINGS, "(d',)", "penultimate representation h(x), the input of the final linear layer"),
        OutputSpec(CLS_HIDDEN, "(d,)", "last-layer [CLS] hidden state"),
        OutputSpec(PRETRAINED_EMBEDDINGS, "(d,)", "sentence representation of the frozen pre-trained encoder"),
        OutputSpec(MC_PROBS, "(T, C)", "T Monte-Carlo-dropout probability vectors", sample_axis=True),
        OutputSpec(ATTENTION_INTRA, "()", "MII's attention-based intra-informativeness R_intra"),
        OutputSpec(SURPRISAL, "(max_length,)", "ALPS surprisal embedding of a frozen masked LM"),
        OutputSpec(EGL_FULL, "()", "expected gradient length over all trainable parameters", gradients=True),
        OutputSpec(EGL_WORD, "()", "expected gradient length of the word-embedding rows (max over words)", gradients=True),
        OutputSpec(ALDEN_INTERPRETATION, "(D,)", "ALDEN local interpretation of one token", gradients=True, reference=True),
    )
}

MC_SCOPES = ("full", "head")
ATTENTION_INTRA_MODES = ("column_sum", "row_sum")
EGL_NORMS = ("l2", "squared")
ALDEN_TARGETS = ("predicted", "all_logits")
ALDEN_EMBEDDING_POINTS = ("word", "after_layernorm")
ALDEN_SUBWORD_AGGREGATES = ("none", "sum", "max")
ALDEN_KEYS = ("target", "embedding_point", "normalize", "subword_aggregate")


def output_names() -> frozenset[str]:
    """Every catalogued output name (``labels`` excluded: it is not computed by a model pass)."""
    return frozenset(CATALOG)


def flagged(flag: str) -> frozenset[str]:
    """Names of the outputs declared with ``flag`` (``gradients``, ``reference`` or ``sample_axis``)."""
    if flag not in ("gradients", "reference", "sample_axis"):
        raise ValueError(f"unknown output flag {flag!r}; expected gradients, reference or sample_axis")
    return frozenset(name for name, spec in CATALOG.items() if getattr(spec, flag))


def check_names(names: frozenset[str] | set[str], owner: str) -> None:
    """Fail with one line when ``owner`` names an output the catalogue does not know."""
    unknown = sorted(set(names) - set(CATALOG) - {LABELS})
    if unknown:
        raise StrategyError(f"{owner}: unknown output(s) {unknown}; catalogued outputs: {sorted(CATALOG)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise StrategyError(f"{name} must be one of {list(choices)}, got {value!r}")


@dataclass(frozen=True)
class PredictionOptions:
    """Options of the output computers, validated once when a request is built.

    Args:
        mc_passes: T, the Monte-Carlo dropout passes of ``mc_probs``.
        mc_scope: ``full`` (dropout through the whole model) or ``head`` (the head only,
            over one eval-mode encoder pass).
        mc_consistent: the same dropout masks for every example in pass t (BatchBALD).
        attention_intra: per-token sum of MII's ``R_intra``: ``column_sum`` or ``row_sum``.
        egl_norm: ``l2`` or ``squared`` gradient norm in EGL.
        egl_samples: label draws per example for multi-label EGL.
        alden_interpretation: ALDEN's interpretation options (keys ``ALDEN_KEYS``).
        mlm_model: the frozen masked LM of ALPS surprisal (name or path).
        token_rate: fraction of tokens ALPS masks.
        max_length: length of ALPS surprisal rows.
    """

    mc_passes: int = 10
    mc_scope: str = "full"
    mc_consistent: bool = False
    attention_intra: str = "column_sum"
    egl_norm: str = "l2"
    egl_samples: int = 10
    alden_interpretation: Mapping[str, Any] = field(default_factory=dict)
    mlm_model: str | None = None
    token_rate: float = 0.15
    max_length: int = 128

    def __post_init__(self) -> None:
        if not _is_int(self.mc_passes) or self.mc_passes < 1:
            raise StrategyError(f"mc_passes must be an integer >= 1, got {self.mc_passes!r}")
        _choice("mc_scope", self.mc_scope, MC_SCOPES)
        if not isinstance(self.mc_consistent, bool):
            raise StrategyError(f"mc_consistent must be true or false, got {self.mc_consistent!r}")
        _choice("attention_intra", self.attention_intra, ATTENTION_INTRA_MODES)
        _choice("egl_norm", self.egl_norm, EGL_NORMS)
        if not _is_int(self.egl_samples) or self.egl_samples < 1:
            raise StrategyError(f"egl_samples must be a positive integer, got {self.egl_samples!r}")
        self._check_alden(dict(self.alden_interpretation or {}))
        if self.mlm_model is not None and (not isinstance(self.mlm_model, str) or not self.mlm_model):
            raise StrategyError(f"mlm_model must be a model name or path, got {self.mlm_model!r}")
        if isinstance(self.token_rate, bool) or not isinstance(self.token_rate, numbers.Real) or not 0 < self.token_rate <= 1:
            raise StrategyError(f"token_rate must be in (0, 1], got {self.token_rate!r}")
        if not _is_int(self.max_length) or self.max_length < 1:
            raise StrategyError(f"max_length must be a positive integer, got {self.max_length!r}")

    @staticmethod
    def _check_alden(options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(ALDEN_KEYS))
        if unknown:
            raise StrategyError(f"alden_interpretation: unknown option(s) {unknown}; known: {list(ALDEN_KEYS)}")
        if options.get("target") is not None:
            _choice("alden target", options["target"], ALDEN_TARGETS)
        _choice("alden embedding_point", options.get("embedding_point", "word"), ALDEN_EMBEDDING_POINTS)
        _choice("alden subword_aggregate", options.get("subword_aggregate", "none"), ALDEN_SUBWORD_AGGREGATES)
        if not isinstance(options.get("normalize", True), bool):
            raise StrategyError(f"alden normalize must be true or false, got {options['normalize']!r}")

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None) -> "PredictionOptions":
        """Build from a strategy's ``prediction_options()`` dict; unknown keys are an error."""
        options = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise StrategyError(f"unknown prediction option(s) {unknown}; known: {sorted(known)}")
        return cls(**options)


@dataclass(frozen=True)
class PredictionRequest:
    """What ``predict_step`` must compute per example, and how.

    ``needs`` are catalogued output names; ``options`` parameterise their computers
    (a mapping is validated into ``PredictionOptions``); ``seed`` seeds every
    stochastic computer (MC dropout, ALPS token samples, multi-label EGL draws) per
    example or per batch; ``reference`` maps an output flagged ``reference`` to the
    labeled rows' values of that output, (r, ...) in ascending pool-index order (set
    only for the unlabeled pass of such an output).
    """

    needs: frozenset[str]
    options: PredictionOptions = field(default_factory=PredictionOptions)
    seed: int = 0
    reference: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "needs", frozenset(self.needs))
        check_names(self.needs, "prediction request")
        if not isinstance(self.options, PredictionOptions):
            object.__setattr__(self, "options", PredictionOptions.from_mapping(self.options))
