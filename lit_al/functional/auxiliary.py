"""Strategies that train a small auxiliary model on embeddings: Perceptron Ensemble and DAL.

STRATEGIES.md §1.7 (PE) and §1.10 (DAL), both from IBM's framework (Ein-Dor et
al. 2020), whose Keras code fixes the architectures and hyperparameters used as
defaults here. Everything runs in torch on the CPU, in float32, and every
random draw (initialisation, dropout masks, shuffling) comes from a
``torch.Generator`` the caller seeds; nothing touches the global RNG.

Keras conventions reproduced [C]: Dense kernels Glorot-uniform with zero bias;
a class weight multiplies each example's loss and the batch loss is
``Σ_i w_i ℓ_i / B``; Keras' Adam (``KerasAdam``: β = (0.9, 0.999), ε = 1e-7
added to the uncorrected ``sqrt(v)``); ``Dropout(rate)`` zeroes each input
feature with probability ``rate`` and scales the survivors by ``1 / (1 - rate)``,
in training only; a fresh shuffle every epoch. Training runs on one intra-op
thread (``single_threaded``).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from .lazy import LazyModule
from .ranking import top_k

# imported when a strategy trains its auxiliary model, not with lit_al.strategies
torch = LazyModule("torch")
F = LazyModule("torch.nn.functional")

#: Keras' Adam epsilon (torch's default is 1e-8).
ADAM_EPS = 1e-7
ADAM_BETAS = (0.9, 0.999)
#: The constant inside the PE entropy's logarithm (IBM's code, §1.7).
PE_LOG_EPS = 1e-10


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from the next draw of ``rng``."""
    return torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))


class KerasAdam:
    """Adam as Keras implements it (the optimiser of IBM's code).

    ``m ← β1 m + (1-β1) g``, ``v ← β2 v + (1-β2) g²``,
    ``θ ← θ - lr · sqrt(1-β2^t)/(1-β1^t) · m / (sqrt(v) + ε)``.
    Written out rather than ``torch.optim.Adam``, whose first construction in a
    process imports torch's compiler stack (seconds) and whose ε sits after the
    bias correction.
    """

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = ADAM_BETAS, eps: float = ADAM_EPS) -> None:
        self.params = params
        self.lr, self.eps = float(lr), float(eps)
        self.beta1, self.beta2 = betas
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.t += 1
        step_size = self.lr * math.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                if p.grad is None:
                    continue
                m.mul_(self.beta1).add_(p.grad, alpha=1.0 - self.beta1)
                v.mul_(self.beta2).addcmul_(p.grad, p.grad, value=1.0 - self.beta2)
                p.addcdiv_(m, v.sqrt().add_(self.eps), value=-step_size)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the enclosed torch ops on one intra-op thread, then restore the previous count.

    The training steps here multiply (batch of 50-100) x (d x width) matrices:
    too small to gain from intra-op threads, while OpenMP's spin-waiting makes
    them 10-50x slower on a machine whose cores are busy with other work.
    """
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _glorot_uniform(shape: tuple[int, ...], fan_in: int, fan_out: int, generator: torch.Generator) -> torch.Tensor:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * limit


#: ``class_weight`` values: ``"none"`` (every example weighs 1; what IBM's code ran) or
#: ``"balanced"`` (``w_c = N / N_c``; what IBM's code appears to intend).
CLASS_WEIGHTS = ("none", "balanced")


def inverse_frequency_weights(counts: torch.Tensor, total: int) -> torch.Tensor:
    """Class weights ``w_c = N / N_c`` (``class_weight="balanced"``); 0 for a class with no examples."""
    counts = counts.to(torch.float32)
    return torch.where(counts > 0, float(total) / counts.clamp_min(1.0), torch.zeros_like(counts))


def example_weights(targets: torch.Tensor, class_weight: str, *, multi_label: bool = False) -> torch.Tensor:
    """Per-example loss weights of the auxiliary models.

    ``targets`` (N, C) are 0/1 rows. ``class_weight="none"``: all ones, shape (N,)
    (single-label) or (N, J) (multi-label). ``"balanced"``: single-label
    ``w_i = N / N_{y_i}``, ``y_i = argmax`` of row i; multi-label [R] each label j
    weighted like a binary task, ``N / N_{j,1}`` where ``y_ij = 1`` and
    ``N / N_{j,0}`` where ``y_ij = 0``.

    Why ``"none"`` is the default: IBM's Keras code (and Gissin's DAL code it
    follows) passes ``class_weight={0: N / Y[Y==0].shape[0], 1: N / Y[Y==1].shape[0]}``
    with a one-hot ``Y`` (``to_categorical``). ``Y[Y==0]`` and ``Y[Y==1]`` each select
    N elements of the (N, 2) matrix, so both weights are N / N = 1.0: the authors
    trained unweighted [C]. ``"balanced"`` is what the code appears to intend
    (STRATEGIES.md §1.7, §1.10).
    """
    if class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight must be one of {CLASS_WEIGHTS}, got {class_weight!r}")
    n, c = targets.shape
    if multi_label:
        if class_weight == "none":
            return torch.ones_like(targets)
        positives = targets.sum(dim=0)
        return targets * inverse_frequency_weights(positives, n) + (1.0 - targets) * inverse_frequency_weights(n - positives, n)
    if class_weight == "none":
        return torch.ones(n)
    classes = targets.argmax(dim=1)
    return inverse_frequency_weights(torch.bincount(classes, minlength=c), n)[classes]


def _as_float32(array: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32) if not isinstance(array, torch.Tensor) else array.float())


# ------------------------------------------------------- Perceptron Ensemble
@single_threaded()
def train_perceptron_ensemble(
    features: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor,
    *,
    generator: torch.Generator,
    multi_label: bool = False,
    members: int = 10,
    dropout: float = 0.9,
    lr: float = 1e-4,
    epochs: int = 10,
    batch_size: int = 50,
    class_weight: str = "none",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train E independent perceptrons on labeled embeddings (IBM's PE, §1.7).

    Each member is ``Dropout(dropout)`` on the input (training only) followed by
    ``Dense(C, softmax)`` trained with weighted cross-entropy (single-label), or
    ``Dense(J, sigmoid)`` with per-label binary cross-entropy summed over labels
    (multi-label [R]). Adam(lr), ``epochs`` passes in shuffled batches of
    ``batch_size``; ``class_weight`` "none" (default, what IBM's code ran) or
    "balanced" (``N / N_c``), see :func:`example_weights`. The members
    differ only by initialisation, dropout masks and shuffling; they are trained
    side by side as one (E, d, C) weight tensor (Adam is elementwise, so this is
    E independent optimisations).

    ``targets`` (N, C) are the 0/1 label rows of the labeled examples in the same
    order as ``features`` (one-hot for single-label, class = argmax). Unlike
    IBM's ``train_perceptron_ensemble_model``, which stacks ``[pos; neg]`` but
    labels them ``[0]*|neg| + [1]*|pos|`` (mislabeling rows whenever
    ``|pos| ≠ |neg|``), each example keeps its own correct label.

    Returns ``(weight (E, d, C), bias (E, C))``.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    x = _as_float32(features)
    y = _as_float32(targets)
    n, d = x.shape
    if y.shape[0] != n or y.ndim != 2:
        raise ValueError(f"targets must be ({n}, C), got {tuple(y.shape)}")
    if n == 0:
        raise ValueError("the perceptron ensemble needs at least one labeled example")
    c = y.shape[1]
    classes = y.argmax(dim=1)
    example_weight = example_weights(y, class_weight, multi_label=multi_label)  # (N,) or (N, J)

    weight = _glorot_uniform((members, d, c), d, c, generator).requires_grad_()
    bias = torch.zeros((members, c), requires_grad=True)
    optimizer = KerasAdam([weight, bias], lr=lr)
    keep = 1.0 - dropout
    for _ in range(int(epochs)):
        order = torch.argsort(torch.rand((members, n), generator=generator), dim=1)
        for start in range(0, n, int(batch_size)):
            idx = order[:, start : start + int(batch_size)]  # (E, B): each member its own shuffle
            xb = x[idx]
            if dropout > 0.0:
                mask = torch.rand(xb.shape, generator=generator) < keep
                xb = xb * mask / keep
            logits = torch.baddbmm(bias.unsqueeze(1), xb, weight)  # (E, B, C)
            wb = example_weight[idx]
            if multi_label:
                per_example = F.binary_cross_entropy_with_logits(logits, y[idx], weight=wb, reduction="none").sum(-1)
            else:
                nll = -torch.log_softmax(logits, dim=-1).gather(-1, classes[idx].unsqueeze(-1)).squeeze(-1)
                per_example = wb * nll
            loss = per_example.mean(dim=1).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return weight.detach(), bias.detach()


def perceptron_ensemble_mean_probs(
    weight: torch.Tensor,
    bias: torch.Tensor,
    features: np.ndarray | torch.Tensor,
    *,
    multi_label: bool = False,
    chunk_size: int = 16384,
) -> np.ndarray:
    """``p̄(x) = (1/E) Σ_e p_e(x)`` without dropout: (n, C) float64 (softmax or sigmoid members)."""
    x = _as_float32(features)
    members, d, c = weight.shape
    flat = weight.permute(1, 0, 2).reshape(d, members * c)
    out = np.empty((x.shape[0], c), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, x.shape[0], chunk_size):
            logits = (x[start : start + chunk_size] @ flat).reshape(-1, members, c).double() + bias.double()
            probs = torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)
            out[start : start + chunk_size] = probs.mean(dim=1).numpy()
    return out


def perceptron_ensemble_entropy(mean_probs: np.ndarray, *, multi_label: bool = False, eps: float = PE_LOG_EPS) -> np.ndarray:
    """PE score (IBM, §1.7): ``s = -Σ_c p̄_c ln(p̄_c + 1e-10)``.

    Multi-label [R]: the summed binary entropy
    ``-Σ_j [p̄_j ln(p̄_j + 1e-10) + (1 - p̄_j) ln(1 - p̄_j + 1e-10)]``.
    """
    p = np.asarray(mean_probs, dtype=np.float64)
    s = -(p * np.log(p + eps)).sum(axis=1)
    if multi_label:
        s -= ((1.0 - p) * np.log(1.0 - p + eps)).sum(axis=1)
    return s


# -------------------------------------------------------------------- DAL
@single_threaded()
def train_discriminator(
    labeled: torch.Tensor,
    unlabeled: torch.Tensor,
    *,
    generator: torch.Generator,
    hidden_size: int | None = None,
    lr: float = 1e-4,
    batch_size: int = 100,
    max_epochs: int = 10,
    stop_accuracy: float = 0.98,
    class_weight: str = "none",
) -> tuple[list[torch.Tensor], int]:
    """Train DAL's labeled-vs-unlabeled discriminator (IBM ``DiscriminativeRepresentationSampling``, §1.10).

    MLP ``Dense(w, ReLU) × 3 → Dense(2, softmax)``, width ``w = hidden_size`` or
    the input dimension when None (IBM); no regularisation; cross-entropy on
    labels 0 (labeled) / 1 (unlabeled), unweighted by default as IBM's code ran
    (``class_weight="balanced"``: ``N / N_c``, see :func:`example_weights`); Adam(lr),
    shuffled batches of ``batch_size``, at most ``max_epochs`` epochs, stopping at
    the end of the first epoch whose training accuracy exceeds ``stop_accuracy``.
    Training accuracy is Keras' epoch ``acc``: the fraction of examples the
    model classified correctly in the forward pass of their batch during the
    epoch (unweighted).

    Returns the parameters ``[W1, b1, W2, b2, W3, b3, W4, b4]`` (see
    ``discriminator_logits``) and the number of epochs run.
    """
    x = torch.cat([labeled, unlabeled]).float()
    y = torch.cat([torch.zeros(labeled.shape[0], dtype=torch.long), torch.ones(unlabeled.shape[0], dtype=torch.long)])
    n, d = x.shape
    width = d if hidden_size is None else int(hidden_size)
    sizes = [d, width, width, width, 2]
    params: list[torch.Tensor] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append(_glorot_uniform((fan_in, fan_out), fan_in, fan_out, generator).requires_grad_())
        params.append(torch.zeros(fan_out, requires_grad=True))
    example_weight = example_weights(F.one_hot(y, 2).float(), class_weight)
    optimizer = KerasAdam(params, lr=lr)
    epochs_run = 0
    for _ in range(int(max_epochs)):
        epochs_run += 1
        order = torch.randperm(n, generator=generator)
        correct = 0
        for start in range(0, n, int(batch_size)):
            idx = order[start : start + int(batch_size)]
            logits = discriminator_logits(params, x[idx])
            nll = F.cross_entropy(logits, y[idx], reduction="none")
            loss = (example_weight[idx] * nll).mean()
            correct += int((logits.detach().argmax(dim=1) == y[idx]).sum())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if correct / n > stop_accuracy:
            break
    return [p.detach() for p in params], epochs_run


def discriminator_logits(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Forward pass of the discriminator MLP: (n, 2) logits (class 1 = unlabeled)."""
    h = x
    for i in range(0, len(params) - 2, 2):
        h = torch.relu(h @ params[i] + params[i + 1])
    return h @ params[-2] + params[-1]


@single_threaded()
def dal_select(
    labeled_embeddings: np.ndarray,
    unlabeled_embeddings: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    index: np.ndarray | None = None,
    sub_batches: int = 5,
    candidate_ratio: float = 10.0,
    hidden_size: int | None = None,
    lr: float = 1e-4,
    batch_size: int = 100,
    max_epochs: int = 10,
    stop_accuracy: float = 0.98,
    class_weight: str = "none",
) -> np.ndarray:
    """Discriminative Active Learning (Gissin & Shalev-Shwartz 2019; IBM's protocol, §1.10).

    Returns ``k`` row positions into ``unlabeled_embeddings``, mini-query by
    mini-query, each mini-query best first::

        M = sub_batches mini-queries, m = k // M, the last takes the remainder
        L' = L
        repeat M times:
            cand = uniform random subset of U of size min(candidate_ratio·|L'|, |U|)
            train a fresh discriminator D on {(e, 0): e ∈ L'} ∪ {(e, 1): e ∈ cand}
            q = top-m of P_D(unlabeled | e) over cand
            L' = L' ∪ q;  U = U \\ q

    [R] choices: when ``k < M`` there are ``k`` mini-queries of one point each;
    the candidate set has at least m points (a tiny L could otherwise give
    fewer candidates than the mini-query needs); candidates are ranked by the logit difference ``z_1 - z_0``, a monotone
    transform of ``P_D(unlabeled | e)`` that does not saturate to ties in float32;
    ties go to the lower ``index`` (pool index; default the position).
    Subsets come from ``rng``; the discriminators' initialisation and shuffling
    from a ``torch.Generator`` seeded from ``rng``.
    """
    e_l = _as_float32(labeled_embeddings)
    e_u = np.asarray(unlabeled_embeddings)
    n = e_u.shape[0]
    k = int(k)
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    if k == 0:
        return np.empty(0, dtype=np.int64)
    if e_l.shape[0] == 0:
        raise ValueError("DAL needs at least one labeled example (its candidate set is candidate_ratio·|L|)")
    tie = np.arange(n, dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
    generator = torch_generator(rng)
    rounds = min(int(sub_batches), k)
    per_round = k // rounds
    remaining = np.ones(n, dtype=bool)
    picked: list[np.ndarray] = []
    grown = e_l
    for r in range(rounds):
        m = per_round if r < rounds - 1 else k - per_round * (rounds - 1)
        pool = np.flatnonzero(remaining)
        size = min(int(candidate_ratio * grown.shape[0]), pool.size)
        size = max(size, m)
        cand = np.sort(pool[rng.choice(pool.size, size=size, replace=False)])
        cand_x = torch.from_numpy(np.asarray(e_u[cand], dtype=np.float32))
        params, _ = train_discriminator(
            grown,
            cand_x,
            generator=generator,
            hidden_size=hidden_size,
            lr=lr,
            batch_size=batch_size,
            max_epochs=max_epochs,
            stop_accuracy=stop_accuracy,
            class_weight=class_weight,
        )
        with torch.no_grad():
            logits = discriminator_logits(params, cand_x).double()
        score = (logits[:, 1] - logits[:, 0]).numpy()
        q = cand[top_k(score, m, index=tie[cand])]
        picked.append(q)
        remaining[q] = False
        grown = torch.cat([grown, cand_x[np.searchsorted(cand, q)]])
    return np.concatenate(picked)
