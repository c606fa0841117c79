"""Gradient-based prediction outputs: ``egl_full``, ``egl_word`` and ``alden_interpretation``.

These computers run autograd inside ``predict_step``. Lightning predicts under
``torch.inference_mode`` by default, which forbids it; the three names are
therefore registered with ``gradients=True`` and ``ActiveLoop`` builds the predict
Trainer of a strategy needing one with ``inference_mode=False`` (Lightning then
predicts under ``torch.no_grad``, which ``torch.enable_grad`` here lifts). Every
gradient is taken with the model in eval mode (no dropout), whatever mode the
caller left it in; modes and ``requires_grad`` flags are restored afterwards.

Outputs (one row per example):

- ``egl_full`` (B,): Expected Gradient Length over every trainable parameter
  (Settles et al. 2008; IBM, Ein-Dor et al. 2020; STRATEGIES.md §1.8 variant (a)).
  Single-label: ``Σ_c p_c N(∇_θ CE(x, c))``; multi-label:
  ``(1/S) Σ_s N(∇_θ Σ_j BCE(x, y^s))`` with ``y^s_j ~ Bernoulli(p_j)``. ``N`` is
  ``||·||_2`` (``egl_norm="l2"``) or ``||·||_2²`` (``"squared"``). The exact
  contract is ``lit_al.functional.gradient.EGL_FULL``.
- ``egl_word`` (B,): EGL-word (Zhang et al. 2017; ALDEN baseline):
  ``max_{w∈W(x)} Σ_c p_c N(∇_{E_w} CE(x, c))`` over the distinct non-special attended
  token ids w of x, ``E_w`` row w of the input word-embedding matrix (multi-label:
  the Monte-Carlo mean as above); contract ``EGL_WORD``.
- ``alden_interpretation`` (B, D): the ALDEN reconstruction's per-example local
  interpretation (STRATEGIES.md §1.16 [R]), exactly as
  ``lit_al.strategies.alden.ALDEN_INTERPRETATION_SPEC`` prescribes.

How the gradients are obtained:

- The loss gradient with respect to the logits z of one example is the residual
  ``r = p − e_c`` (softmax + CE with target c) or ``r = σ(z) − y`` (sigmoid + summed
  BCE with target y), so ``∇_θ ℓ = J_θ(z)^T r``: one vector-Jacobian product of the
  logits with ``r`` held constant per target. Every target (C classes, or S label
  draws) is one backward pass over one retained graph.
- ``egl_full`` loops over the examples of a batch, each forwarded alone at its own
  length, because per-example parameter gradients cannot be separated from one
  batched backward, and ``torch.func.vmap`` cannot trace Hugging Face encoders (their
  attention-mask construction branches on tensor values). Cost per example: one
  forward and C (or S) backward passes through the whole encoder, as IBM's EGL
  timings imply; memory: one copy of the parameter gradients at a time.
- ``egl_word`` and ``alden_interpretation`` need gradients with respect to the
  token embeddings only. Examples do not interact in eval mode, so one batched
  backward of ``Σ_b r_b · z_b`` gives every example's ``∂ℓ_b/∂e_b`` at once; a
  forward hook on the embedding submodule replaces its output with a leaf tensor,
  and the parameters are frozen meanwhile so no weight gradient is built.
- Multi-label targets ``y^s`` are drawn per example from a ``torch.Generator``
  seeded with ``(request.seed, pool index)`` (``example_generator``), on the CPU, so
  the draws depend neither on batching nor on the device.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from ..errors import StrategyError
from ..functional import gradient as G
from ..functional.interpretation import aggregate_subwords, select_token_interpretations
from .catalog import ALDEN_INTERPRETATION, EGL_FULL, EGL_WORD, PredictionRequest
from .forward import Classifier, cached_on_module, classifier_tokenizer, eval_mode, special_token_ids
from .registry import register_output

#: Names of the LayerNorm child of an encoder's embeddings module, by model family.
_EMBEDDING_NORM_NAMES = ("LayerNorm", "layer_norm", "norm", "ln")


# ------------------------------------------------------------------ context
def _require_autograd(output: str) -> None:
    if torch.is_inference_mode_enabled():
        raise StrategyError(
            f"output {output!r} takes gradients, but predict runs under torch.inference_mode; build the predict "
            "Trainer with inference_mode=False (ActiveLoop does so when the strategy's needs_gradients is true)"
        )


@contextlib.contextmanager
def _frozen_parameters(root: nn.Module) -> Iterator[None]:
    """``requires_grad=False`` on every parameter, so a backward to the inputs builds no weight gradient."""
    flags = [(param, param.requires_grad) for param in root.parameters()]
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)


@contextlib.contextmanager
def _differentiable_output(submodule: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Replace ``submodule``'s forward output by a leaf tensor that requires grad; yields the leaves."""
    captured: list[torch.Tensor] = []

    def hook(mod: nn.Module, args: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise StrategyError(f"{type(mod).__name__} returns {type(output).__name__}, not a tensor; cannot take input gradients")
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf

    handle = submodule.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


def _plain_batch(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model inputs, cloned: tensors made under inference mode cannot be saved for backward."""
    return {"input_ids": batch["input_ids"].clone(), "attention_mask": batch["attention_mask"].clone()}


# ------------------------------------------------------------------ tokens
def content_mask(module: Classifier, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """(B, ℓ) bool: attended positions that are not special tokens."""
    ids = batch["input_ids"]
    return batch["attention_mask"].bool() & ~torch.isin(ids, special_token_ids(module, ids.device))


def wordpiece_continuation_table(tokenizer, size: int) -> torch.Tensor:
    """(size,) bool: ``table[id]`` is True for WordPiece continuation pieces (``##ing``).

    Raises ``StrategyError`` unless the tokenizer's model is WordPiece: other
    families (BPE, Unigram) mark word starts differently, and the batches carry
    token ids only, not the tokenizer's word ids.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = getattr(backend, "model", None)
    if model is None or type(model).__name__ != "WordPiece":
        raise StrategyError(
            "alden: subword_aggregate 'sum'/'max' needs word boundaries, which lit_al derives from WordPiece "
            f"continuation pieces only (BERT family); this tokenizer ({type(tokenizer).__name__}) is not WordPiece; "
            "use subword_aggregate='none'"
        )
    prefix = model.continuing_subword_prefix
    vocab = tokenizer.get_vocab()
    table = torch.zeros(max(int(size), max(vocab.values()) + 1), dtype=torch.bool)
    for token, index in vocab.items():
        if token.startswith(prefix):
            table[index] = True
    return table


def word_ids_from_pieces(input_ids: torch.Tensor, valid: torch.Tensor, continuation: torch.Tensor) -> torch.Tensor:
    """(B, ℓ) 0-based word index of each valid piece, −1 elsewhere (HF ``word_ids()`` for WordPiece).

    A valid piece starts a new word unless it is a continuation piece directly after
    another valid piece; positions that are not ``valid`` (special tokens, padding)
    get −1, so [UNK] words are dropped as in the ``"none"`` mode.
    """
    table = continuation.to(input_ids.device)
    is_continuation = table[input_ids] & valid
    previous_valid = torch.nn.functional.pad(valid[:, :-1], (1, 0), value=False)
    starts = valid & (~is_continuation | ~previous_valid)
    words = starts.long().cumsum(dim=1) - 1
    return words.masked_fill(~valid, -1)


def _continuation_table(module: Classifier) -> torch.Tensor:
    size = module.encoder.get_input_embeddings().num_embeddings
    return cached_on_module(
        module, "wordpiece_continuation", lambda: wordpiece_continuation_table(classifier_tokenizer(module), size)
    )


# ------------------------------------------------------------- EGL targets
def example_generator(seed: int, pool_index: int) -> torch.Generator:
    """The CPU generator of one example's multi-label target draws (seeded by request seed and pool index)."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(pool_index) * 101 + 17) % (2**63 - 1))


def _egl_options(request: PredictionRequest) -> tuple[str, int]:
    return request.options.egl_norm, request.options.egl_samples


def _targets(
    module: Classifier, probs: torch.Tensor, pool_index: torch.Tensor, seed: int, samples: int
) -> torch.Tensor:
    """(B, K, C) loss gradients w.r.t. the logits, one per target: ``p − e_c`` (K = C) or ``p − y^s`` (K = S)."""
    if not module.multi_label:
        eye = torch.eye(probs.shape[-1], dtype=probs.dtype, device=probs.device)
        return probs[:, None, :] - eye[None]
    draws = []
    cpu_probs = probs.detach().float().cpu()
    for b in range(probs.shape[0]):
        generator = example_generator(seed, int(pool_index[b]))
        draws.append(G.sample_multilabel_targets(cpu_probs[b : b + 1], samples, generator)[:, 0])
    y = torch.stack(draws).to(device=probs.device, dtype=probs.dtype)  # (B, S, J)
    return probs[:, None, :] - y


def _combine(module: Classifier, probs: torch.Tensor, grad_norms: torch.Tensor, norm: str) -> torch.Tensor:
    """EGL from (…, K) per-target gradient L2 norms: p-weighted over classes, or the mean over draws."""
    if module.multi_label:
        return G.egl_from_sampled_gradients(grad_norms, norm=norm)
    return G.egl_from_per_class_gradients(probs, grad_norms, norm=norm)


# -------------------------------------------------------------------- EGL
@register_output(EGL_FULL)
def egl_full(module: Classifier, batch: dict, request: PredictionRequest, cache: Any) -> torch.Tensor:
    """(B,) ``Σ_c p_c N(∇_θ CE(x, c))`` over all trainable parameters (ML: MC mean over y ~ Bern(p)).

    Settles et al. 2008; IBM (Ein-Dor et al. 2020); STRATEGIES.md §1.8 (a). Each
    example is forwarded alone at its own length; its C (or S) parameter gradients
    ``J_θ(z)^T r`` come from backward passes over one retained graph, and only their
    squared norms (accumulated in float32) are kept.
    """
    _require_autograd(G.EGL_FULL)
    norm, samples = _egl_options(request)
    plain = _plain_batch(batch)
    params = [param for param in module.parameters() if param.requires_grad]
    if not params:
        raise StrategyError("egl: variant 'full' needs trainable parameters, but every parameter is frozen")
    scores = []
    with eval_mode(module), torch.enable_grad():
        for b in range(plain["input_ids"].shape[0]):
            keep = plain["attention_mask"][b].bool()
            one = {"input_ids": plain["input_ids"][b][keep][None], "attention_mask": plain["attention_mask"][b][keep][None]}
            logits = module(one)  # (1, C)
            probs = module.probabilities(logits.detach())
            residuals = _targets(module, probs, batch["pool_index"][b : b + 1], request.seed, samples)[0]  # (K, C)
            grad_norms = torch.empty(residuals.shape[0], dtype=torch.float32, device=logits.device)
            for k in range(residuals.shape[0]):
                grads = torch.autograd.grad(
                    logits, params, grad_outputs=residuals[k][None], retain_graph=k + 1 < residuals.shape[0],
                    allow_unused=True,  # e.g. the pooler when the head reads the [CLS] state: gradient 0
                )
                squared = sum(g.float().pow(2).sum() for g in grads if g is not None)
                grad_norms[k] = torch.as_tensor(squared, device=logits.device).sqrt()
            scores.append(_combine(module, probs.float(), grad_norms[None], norm))
    return torch.cat(scores)


@register_output(EGL_WORD)
def egl_word(module: Classifier, batch: dict, request: PredictionRequest, cache: Any) -> torch.Tensor:
    """(B,) EGL-word: ``max_{w∈W(x)} Σ_c p_c N(∇_{E_w} CE(x, c))`` (Zhang et al. 2017; §1.8).

    ``∇_{E_w} ℓ`` is the gradient w.r.t. row w of the word-embedding matrix: the sum
    of the gradients w.r.t. the word-embedding lookup output at every position
    holding token w. W(x) = distinct token ids at attended, non-special positions;
    empty W(x) gives 0. Multi-label: ``(1/S) Σ_s N(·)`` inside the max, y^s ~ Bern(p).
    One batched forward and C (or S) backward passes to the embeddings per batch.
    """
    _require_autograd(G.EGL_WORD)
    norm, samples = _egl_options(request)
    plain = _plain_batch(batch)
    ids = plain["input_ids"]
    B = ids.shape[0]
    valid = content_mask(module, plain)
    # one group per distinct (example, token id): the rows E_w the example touches
    span = int(ids.max()) + 1 if ids.numel() else 1
    keys = torch.arange(B, device=ids.device)[:, None] * span + ids
    groups, inverse = torch.unique(keys[valid], return_inverse=True)
    group_example = torch.div(groups, span, rounding_mode="floor")
    embedding = module.encoder.get_input_embeddings()
    with eval_mode(module), _frozen_parameters(module), torch.enable_grad(), _differentiable_output(embedding) as leaves:
        logits = module(plain)
        if len(leaves) != 1:
            raise StrategyError(f"egl: variant 'word' expected one word-embedding lookup per forward, saw {len(leaves)}")
        probs = module.probabilities(logits.detach())
        residuals = _targets(module, probs, batch["pool_index"], request.seed, samples)  # (B, K, C)
        K = residuals.shape[1]
        grad_norms = torch.zeros(groups.shape[0], K, dtype=torch.float32, device=ids.device)
        for k in range(K):
            (grad,) = torch.autograd.grad(logits, leaves[0], grad_outputs=residuals[:, k], retain_graph=k + 1 < K)
            rows = torch.zeros(groups.shape[0], grad.shape[-1], dtype=torch.float32, device=grad.device)
            rows.index_add_(0, inverse, grad[valid].float())
            grad_norms[:, k] = rows.norm(dim=-1)
    per_group = _combine(module, probs.float()[group_example], grad_norms, norm)
    out = torch.zeros(B, dtype=torch.float32, device=ids.device)
    return out.scatter_reduce(0, group_example, per_group, reduce="amax", include_self=True)


# ------------------------------------------------------------------ ALDEN
def _alden_options(request: PredictionRequest, multi_label: bool) -> dict[str, Any]:
    options = dict(request.options.alden_interpretation or {})  # keys and choices checked by PredictionOptions
    target = options.get("target") or ("all_logits" if multi_label else "predicted")
    point = options.get("embedding_point", "word")
    normalize = options.get("normalize", True)
    aggregate = options.get("subword_aggregate", "none")
    if multi_label and target == "predicted":
        raise StrategyError("alden: target='predicted' is undefined for multi-label tasks; use target='all_logits'")
    return {"target": target, "embedding_point": point, "normalize": normalize, "subword_aggregate": aggregate}


def embedding_submodule(module: Classifier, point: str) -> nn.Module:
    """The encoder submodule whose output is ``e``: the word-embedding lookup, or the embeddings LayerNorm."""
    if point == "word":
        return module.encoder.get_input_embeddings()
    embeddings = getattr(module.encoder, "embeddings", None)
    for name in _EMBEDDING_NORM_NAMES:
        norm = getattr(embeddings, name, None)
        if isinstance(norm, nn.Module):
            return norm
    raise StrategyError(
        f"alden: embedding_point='after_layernorm' needs an encoder whose 'embeddings' module has a LayerNorm "
        f"child (one of {list(_EMBEDDING_NORM_NAMES)}); {type(module.encoder).__name__} has none; use 'word'"
    )


@register_output(ALDEN_INTERPRETATION)
def alden_interpretation(module: Classifier, batch: dict, request: PredictionRequest, cache: Any) -> torch.Tensor:
    """(B, D) ALDEN local interpretation of the chosen token (STRATEGIES.md §1.16 [R]; ``ALDEN_INTERPRETATION_SPEC``).

    ``g_t = ∂z_ŷ/∂e_t`` (D = d; ``target="predicted"``) or ``[∂z_c/∂e_t]_c`` flattened
    at ``c·d + i`` (D = C·d; ``"all_logits"``), ``e_t`` the embedding at
    ``embedding_point``, logits z pre-softmax/sigmoid, eval mode. Over the attended
    non-special tokens (or words, ``subword_aggregate``), the row is
    ``select_token_interpretations(g, mask, reference, normalize)``: with no
    reference (labeled pass) the token of largest ``||g_t||``; with
    ``reference = request.reference["alden_interpretation"]`` (Z_L, the labeled rows)
    the token whose (normalised) g is farthest from Z_L.
    """
    _require_autograd(ALDEN_INTERPRETATION)
    options = _alden_options(request, module.multi_label)
    plain = _plain_batch(batch)
    valid = content_mask(module, plain)
    submodule = embedding_submodule(module, options["embedding_point"])
    with eval_mode(module), _frozen_parameters(module), torch.enable_grad(), _differentiable_output(submodule) as leaves:
        logits = module(plain)
        if len(leaves) != 1:
            raise StrategyError(f"alden: expected one output of the embedding point per forward, saw {len(leaves)}")
        leaf = leaves[0]
        if options["target"] == "predicted":
            chosen = torch.zeros_like(logits).scatter_(1, logits.detach().argmax(dim=1, keepdim=True), 1.0)
            (token_grads,) = torch.autograd.grad(logits, leaf, grad_outputs=chosen)
        else:
            C = logits.shape[1]
            per_logit = []
            for c in range(C):
                one_hot = torch.zeros_like(logits)
                one_hot[:, c] = 1.0
                (grad,) = torch.autograd.grad(logits, leaf, grad_outputs=one_hot, retain_graph=c + 1 < C)
                per_logit.append(grad)
            B, L, d = per_logit[0].shape
            token_grads = torch.stack(per_logit, dim=2).reshape(B, L, C * d)
    mask = valid
    if options["subword_aggregate"] != "none":
        word_ids = word_ids_from_pieces(plain["input_ids"], valid, _continuation_table(module))
        token_grads, mask = aggregate_subwords(token_grads, word_ids, options["subword_aggregate"])
    reference = request.reference.get(ALDEN_INTERPRETATION) if request.reference else None
    if reference is not None:
        reference = torch.as_tensor(reference, device=token_grads.device)
    return select_token_interpretations(token_grads, mask.to(token_grads.dtype), reference, options["normalize"])
