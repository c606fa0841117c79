"""Three outputs with the flags a plug-in may set, and a strategy that needs all three (``test_output_plugins``).

- ``top_logit_gradient`` (``gradients``): ||∂ z_max / ∂ h(x)||, the gradient of the largest logit with
  respect to h(x), the output layer's input. For a linear output layer z = W h + b it is the norm of
  W's row of the predicted class.
- ``centered_features`` (``reference``): h(x) of a labeled text (the reference pass); for the others,
  h(x) minus the mean h(x) of the labeled texts.
- ``tempered_probs`` (``sample_axis``): softmax(z / t) at the temperatures t = 1, ..., ``samples``: a
  (T, C) row of T probability vectors, as MC dropout gives, but deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lit_al.functional.ranking import top_k
from lit_al.outputs import Output
from lit_al.strategies import Selection, Strategy


class TopLogitGradient(Output):
    """(B,) ||∂ z_max / ∂ h(x)||."""

    name = "top_logit_gradient"
    gradients = True

    def compute(self, module, batch, request, cache):
        import torch

        with torch.enable_grad():  # Lightning predicts under no_grad; ``gradients`` lifts inference mode
            parts = module.forward_parts(batch)
            (gradient,) = torch.autograd.grad(parts.logits.max(dim=-1).values.sum(), parts.features)
        return gradient.norm(dim=-1)


class CenteredFeatures(Output):
    """(B, d) h(x) in the labeled pass; h(x) minus the labeled texts' mean h(x) in the pool's."""

    name = "centered_features"
    row_shape = "(d,)"
    reference = True

    def compute(self, module, batch, request, cache):
        import torch

        features = cache.features.float()
        labeled = request.reference.get(self.name)
        if labeled is None:  # the reference pass over the labeled texts
            return features
        return features - torch.as_tensor(np.asarray(labeled)).to(features).mean(dim=0)


@dataclass(frozen=True)
class TemperatureOptions:
    """``samples``: how many temperatures (1, 2, ..., samples)."""

    samples: int = 3


class TemperedProbabilities(Output):
    """(B, T, C) softmax(z / t), t = 1, ..., T."""

    name = "tempered_probs"
    row_shape = "(T, C)"
    sample_axis = True
    options = TemperatureOptions

    def compute(self, module, batch, request, cache):
        import torch

        samples = request.options.of(self.name).samples
        temperatures = torch.arange(1, samples + 1, dtype=torch.float32, device=cache.logits.device)
        return torch.softmax(cache.logits.float()[:, None, :] / temperatures[None, :, None], dim=-1)


def flagged_score(gradient: np.ndarray, centered: np.ndarray, tempered: np.ndarray) -> np.ndarray:
    """gradient + ||centered|| + the mean over temperatures of the largest probability (tempered: T, n, C)."""
    return gradient + np.linalg.norm(centered, axis=-1) + tempered.max(axis=-1).mean(axis=0)


class LargestFlaggedScore(Strategy):
    """The ``budget`` unlabeled texts with the largest ``flagged_score``, largest first."""

    needs = frozenset({TopLogitGradient.name, CenteredFeatures.name, TemperedProbabilities.name})
    requires_trained_model = True
    supports_multi_label = False

    def __init__(self, *, multi_label: bool = False, samples: int = 3) -> None:
        super().__init__(multi_label=multi_label)
        self.samples = samples

    def prediction_options(self):
        return {TemperedProbabilities.name: {"samples": self.samples}}

    def _select(self, outputs, labeled, unlabeled, budget, rng):
        tempered = np.asarray(outputs[TemperedProbabilities.name])  # (T, n_pool, C): the sample axis first
        score = flagged_score(np.asarray(outputs[TopLogitGradient.name])[unlabeled],
                              np.asarray(outputs[CenteredFeatures.name])[unlabeled], tempered[:, unlabeled])
        best = top_k(score, budget, largest=True, index=unlabeled)
        return Selection(unlabeled[best], score[best])
