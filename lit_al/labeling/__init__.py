"""People in the loop: the files of a proposed batch, and a person's answers read back and applied.

``formats`` writes the batch to label (CSV, Label Studio, JSONL); ``reading`` reads the
answers back from whichever tool wrote them (one module per tool: ``csv_answers``,
``label_studio``, ``argilla``, ``prodigy``); ``answers`` validates them as a whole and
records them in the label state, with annotator and time. ``lit_al label``, the Python
``Session`` and the labeling page all go through ``apply_answers``.
"""

from .answers import Answer, ImportSummary, apply_answers, now_utc, retract
from .formats import write_batch_files
from .label_studio import label_studio_answers
from .reading import read_answer_file, read_answers
from .records import AnswerFile

__all__ = ["Answer", "AnswerFile", "ImportSummary", "apply_answers", "label_studio_answers", "now_utc",
           "read_answer_file", "read_answers", "retract", "write_batch_files"]
