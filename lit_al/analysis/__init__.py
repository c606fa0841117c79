"""Analysis metrics for active-learning runs (STRATEGIES.md §2).

Pure functions: NumPy arrays in, numbers or arrays out; no Lightning, plotting or
file I/O. Nearest-neighbour searches go through :mod:`lit_al.index`.

- :mod:`lit_al.analysis.batch_metrics`: properties of a selected batch or set,
  D(B) (§2.1), Rep(B) (§2.2), Gd (§2.3), Gu (§2.4) and batch overlap (§2.5).
- :mod:`lit_al.analysis.statistics`: learning-curve summaries, the area under the
  learning curve (§2.6 b) and the labels needed to reach a target (§2.7), and
  Wilcoxon signed-rank tests with Bonferroni correction (§2.8).
"""

from lit_al.analysis.batch_metrics import (
    DiversityMode,
    batch_overlap,
    diversity,
    mean_entropy_under_reference_model,
    representativeness,
    token_jaccard,
    token_jaccard_from_counts,
    token_jaccard_from_ids,
)
from lit_al.analysis.statistics import (
    LabelsToReach,
    WilcoxonResult,
    area_under_learning_curve,
    bonferroni,
    labels_to_reach,
    wilcoxon_pairwise,
    wilcoxon_vs_reference,
)

__all__ = [
    "DiversityMode",
    "LabelsToReach",
    "WilcoxonResult",
    "area_under_learning_curve",
    "batch_overlap",
    "bonferroni",
    "diversity",
    "labels_to_reach",
    "mean_entropy_under_reference_model",
    "representativeness",
    "token_jaccard",
    "token_jaccard_from_counts",
    "token_jaccard_from_ids",
    "wilcoxon_pairwise",
    "wilcoxon_vs_reference",
]
