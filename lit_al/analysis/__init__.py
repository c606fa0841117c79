"""Analysis metrics for active-learning runs (STRATEGIES.md §2).

Pure functions: NumPy arrays in, numbers or arrays out; no Lightning, plotting or
file I/O. Nearest-neighbour searches go through :mod:`lit_al.index`.

- :mod:`lit_al.analysis.batch_metrics`: properties of a selected batch or set,
  D(B) (§2.1), Rep(B) (§2.2), Gd (§2.3), Gu (§2.4) and batch overlap (§2.5).
- :mod:`lit_al.analysis.statistics`: learning-curve summaries, the area under the
  learning curve (§2.6 b) and the labels needed to reach a target (§2.7), and
  Wilcoxon signed-rank tests with Bonferroni correction (§2.8).

The names below are imported from their module on first use (PEP 562): ``lit_al.analysis.stopping``,
which ``lit_al status`` reads, loads without SciPy or FAISS.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Exported name -> the module defining it.
_LAZY = {
    **dict.fromkeys(
        ("DiversityMode", "batch_overlap", "diversity", "mean_entropy_under_reference_model", "representativeness",
         "token_jaccard", "token_jaccard_from_counts", "token_jaccard_from_ids"),
        "lit_al.analysis.batch_metrics",
    ),
    **dict.fromkeys(
        ("LabelsToReach", "WilcoxonResult", "area_under_learning_curve", "bonferroni", "labels_to_reach",
         "wilcoxon_pairwise", "wilcoxon_vs_reference"),
        "lit_al.analysis.statistics",
    ),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lit_al.analysis' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
