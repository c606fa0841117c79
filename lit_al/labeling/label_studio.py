"""Label Studio's answers: its full JSON export (also what its API returns), JSON-MIN and CSV/TSV exports.

The example id travels as ``data.lit_al_id`` (``names.ID_KEY``): the full export keeps the
task's data as imported, and the JSON-MIN/CSV converter copies data fields to the top level
but writes its own task number into ``id``. Tasks written by older lit_al versions carried
``data.id``; the full export still has it and it is read when ``lit_al_id`` is absent.

A task may hold several annotations (several annotators, or one who resubmitted):

- the latest submitted annotation (``was_cancelled`` false; latest by ``updated_at``, then
  ``created_at``, then its place in the list) gives the label (exports of Label Studio before
  1.0 say ``completions`` and ``skipped``: read the same);
- the task is a skip only when every annotation is cancelled ("Skip" in Label Studio);
- when the submitted annotations disagree, the item is counted in ``disagreements``;
- a task with only drafts, or no annotation, gives no answer and is counted as unanswered.

The answer is the ``Choices`` region named ``label`` (``from_name``); a config with one
``Choices`` control of another name works too.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import DataError
from .answers import Answer
from .names import ID_KEY, QUESTION
from .records import AnswerFile, Tally, annotator, example_id, expect, expect_names, kind_of, latest

_TIMES = ("updated_at", "created_at")
#: Fields Label Studio's JSON-MIN / CSV converter adds beside the task's data.
MIN_FIELDS = ("annotator", "annotation_id", "lead_time")


def label_studio_answers(tasks: Sequence[Any], source: str = "Label Studio",
                         wheres: Sequence[str] | None = None) -> AnswerFile:
    """The answers in a list of Label Studio task objects (a JSON export, or tasks from its API).

    ``wheres`` names each task in messages (``"FILE: line N"``); by default ``"SOURCE: task N"``.
    Unknown shapes and wrong types raise one ``DataError``; tasks without an answer are counted.
    """
    tally = Tally(source)
    for number, task in enumerate(tasks, start=1):
        where = wheres[number - 1] if wheres is not None else f"{source}: task {number}"
        task_answer(task, where, tally)
    return tally.result()


def task_answer(task: Any, where: str, tally: Tally) -> None:
    """Record the answer of one task (full JSON shape) in ``tally``."""
    expect(task, dict, where, "the task")
    data = expect(task.get("data"), dict, where, "the task's data")
    key = ID_KEY if data.get(ID_KEY) is not None else "id" if data.get("id") is not None else None
    if key is None:
        raise DataError(f"{where}: the task's data has no {ID_KEY} (nor id); import the tasks lit_al wrote "
                        f"(label_studio_tasks.json) into Label Studio")
    item = example_id(data[key], where, f"data.{key}")
    annotations = task.get("annotations") if "annotations" in task else task.get("completions")  # before 1.0
    answer, disagreed = _annotations_outcome(annotations, item, where)
    if answer is not None:
        tally.answer(answer, disagreed)
    elif task.get("drafts"):
        tally.none("draft")
    else:
        tally.none("task nobody annotated")


def annotations_answer(annotations: Any, item_id: str, where: str) -> Answer | None:
    """The answer of one task's ``annotations`` by the rule of the module docstring; None when it has none."""
    return _annotations_outcome(annotations, item_id, where)[0]


def _annotations_outcome(annotations: Any, item: str, where: str) -> tuple[Answer | None, bool]:
    """The answer of a task's annotations (None: no annotation), and whether its submitted annotations disagree."""
    annotations = [] if annotations is None else expect(annotations, list, where, "annotations")
    for number, annotation in enumerate(annotations, start=1):
        expect(annotation, dict, where, f"annotation {number}")
    submitted = [(k, a) for k, a in enumerate(annotations) if not (a.get("was_cancelled") or a.get("skipped"))]
    if submitted:
        labels = {k: _choices(a.get("result"), f"{where}: annotation {k + 1}") for k, a in submitted}
        position, last = latest(submitted, *_TIMES)
        disagreed = len({tuple(sorted(x)) for x in labels.values()}) > 1
        return Answer(item, labels[position], None, annotator(last.get("completed_by")), where), disagreed
    if annotations:
        _, last = latest(enumerate(annotations), *_TIMES)
        return Answer(item, None, "skip", annotator(last.get("completed_by")), where), False
    return None, False


def _choices(result: Any, where: str) -> tuple[str, ...]:
    """The class names chosen in an annotation's ``result`` (its regions)."""
    regions = expect(result, list, where, "result")
    for number, region in enumerate(regions, start=1):
        expect(region, dict, where, f"region {number} of result")
    chosen = [r for r in regions if r.get("type") == "choices"]
    if regions and not chosen:
        kinds = sorted({str(r.get("type")) for r in regions})
        raise DataError(f"{where}: no Choices answer (regions of type {', '.join(kinds)}); "
                        f"lit_al reads a Choices control named {QUESTION!r}")
    names = {r.get("from_name") for r in chosen}
    if len(names) > 1:
        if QUESTION not in names:
            raise DataError(f"{where}: answers to several Choices controls {sorted(map(str, names))}; "
                            f"name the label control {QUESTION!r}")
        chosen = [r for r in chosen if r.get("from_name") == QUESTION]
    labels: list[str] = []
    for region in chosen:
        value = expect(region.get("value"), dict, where, "a choices region's value")
        labels.extend(expect_names(value.get("choices"), where, "value.choices"))
    return tuple(dict.fromkeys(labels))


# ------------------------------------------------------------------ JSON-MIN and CSV exports
def is_min_row(record: Mapping[str, Any]) -> bool:
    """A row of Label Studio's JSON-MIN (or CSV) export: the task's data beside the annotation's fields."""
    return ID_KEY in record or "annotation_id" in record


def min_answers(rows: Sequence[tuple[str, Mapping[str, Any]]], tally: Tally) -> None:
    """Record the answers of JSON-MIN / CSV rows: one row per annotation, grouped by ``lit_al_id``.

    The converter leaves out cancelled annotations, so no skip comes from these exports.
    """
    groups: dict[str, list[tuple[int, str, Mapping[str, Any], tuple[str, ...] | None]]] = {}
    for position, (where, row) in enumerate(rows):
        if row.get(ID_KEY) in (None, ""):
            raise DataError(f"{where}: no {ID_KEY}: Label Studio's JSON-MIN and CSV exports write the task's own "
                            f"number into id, so lit_al needs tasks that carry {ID_KEY} (lit_al's "
                            f"label_studio_tasks.json since this version), or Label Studio's full JSON export")
        item = example_id(row[ID_KEY], where, ID_KEY)
        groups.setdefault(item, []).append((position, where, row, _min_value(row.get(QUESTION), where)))
    for item, group in groups.items():
        answered = [(position, row) for position, _, row, labels in group if labels is not None]
        if not answered:
            tally.none("task nobody annotated")
            continue
        position, row = latest(answered, *_TIMES)
        where, labels = next((w, x) for p, w, _, x in group if p == position)
        distinct = {tuple(sorted(x)) for _, _, _, x in group if x is not None}
        tally.answer(Answer(item, labels, None, annotator(row.get("annotator")), where), len(distinct) > 1)


def _min_value(value: Any, where: str) -> tuple[str, ...] | None:
    """The converter's value of a Choices control: ``"a"`` for one choice, ``{"choices": [...]}`` for several."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, dict):
        return expect_names(value.get("choices"), where, f"{QUESTION}.choices")
    raise DataError(f"{where}: {QUESTION} is {kind_of(value)}; expected a class name or {{\"choices\": [...]}}")
