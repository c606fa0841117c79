"""People in the loop: the files of a proposed batch, and a person's answers read back and applied.

``formats`` writes the batch to label (CSV, Label Studio, JSONL) and reads answers in
those formats; ``answers`` validates them as a whole and records them in the label
state, with annotator and time. ``lit_al label``, the Python ``Session`` and the
labeling page all go through ``apply_answers``.
"""

from .answers import Answer, ImportSummary, apply_answers, now_utc, retract
from .formats import read_answers, write_batch_files

__all__ = ["Answer", "ImportSummary", "apply_answers", "now_utc", "read_answers", "retract", "write_batch_files"]
