"""Argilla's answers, from the records of its v1 and v2 SDKs as they are serialised.

Shapes read (the question is named ``label``; its value a class name, or a list of them
for a multi-label question):

- v1 ``FeedbackRecord`` (``record.dict()`` / ``.json()``): ``responses`` is a list of
  ``{"user_id", "values": {"label": {"value": ...}}, "status"}``; the id is ``external_id``,
  else ``metadata.lit_al_id`` or ``metadata.id`` (``id`` there is Argilla's own UUID);
- v1 Hugging Face export (``FeedbackDataset.format_as("datasets")`` written as JSON lines):
  the column ``label`` holds ``[{"user_id", "value", "status"}]``; id as above (``metadata``
  there is a JSON string);
- v1 legacy ``TextClassificationRecord``: ``annotation`` with ``status`` ``Validated`` (a
  label), ``Discarded`` (a skip) or ``Default`` (pending); the id is ``id``;
- v2 ``Record`` (``dataset.records.to_json()``, a JSON list, or ``to_list()`` as JSON lines):
  ``responses: {"label": [{"value", "user_id", "status"}]}``; the id is ``id``;
- v2 flattened (``to_list(flatten=True)``, ``to_datasets()``): the columns
  ``label.responses``, ``label.responses.users`` and ``label.responses.status``.

Only ``submitted`` responses are labels (the latest one wins; disagreeing annotators are
counted); a ``discarded`` response, when none is submitted, is a skip; drafts and records
without a response are counted as unanswered and stay pending.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from ..errors import DataError
from .answers import Answer
from .names import ID_KEY, QUESTION
from .records import Tally, annotator, example_id, expect, kind_of, latest

FLAT = f"{QUESTION}.responses"
_STATUSES = ("submitted", "discarded", "draft")
_LEGACY = {"validated": "label", "discarded": "skip", "default": "pending"}
_TIMES = ("updated_at", "inserted_at")
AMBIGUOUS = "completed with differing answers (records.to_json keeps no response status: export with to_datasets())"


def shape(record: Mapping[str, Any]) -> str | None:
    """Which Argilla shape ``record`` has (``v1``, ``v1-hf``, ``v1-legacy``, ``v2``, ``v2-flat``), or None."""
    responses = record.get("responses")
    if "responses" in record:
        return "v2" if isinstance(responses, dict) and "values" not in responses else "v1"
    if any(key == FLAT or key.endswith(".responses") for key in record):
        return "v2-flat"
    if "annotation" in record and ("status" in record or "annotation_agent" in record):
        return "v1-legacy"
    if isinstance(record.get(QUESTION), list) and ("external_id" in record or f"{QUESTION}-suggestion" in record):
        return "v1-hf"
    return None


def record_answer(record: Mapping[str, Any], where: str, tally: Tally) -> None:
    """Record the answer of one Argilla record (any shape ``shape`` knows) in ``tally``."""
    kind = shape(record)
    if kind == "v1-legacy":
        return _legacy(record, where, tally)
    if kind == "v2" or kind == "v2-flat":
        item = example_id(record.get("id"), where, "id")
        responses = _v2_responses(record, where) if kind == "v2" else _flat_responses(record, where)
        if kind == "v2" and any(r["status"] is None for _, r in responses):
            return _v2_without_status(record, item, responses, where, tally)
    else:
        item = _v1_id(record, where)
        responses = _v1_responses(record, where) if kind == "v1" else _hf_responses(record, where)
    _decide(item, responses, where, tally)


def _decide(item: str, responses: list[tuple[int, Mapping[str, Any]]], where: str, tally: Tally) -> None:
    """The rule for every shape: latest submitted response, else a discard is a skip, else unanswered."""
    by_status = {status: [(k, r) for k, r in responses if r["status"] == status] for status in _STATUSES}
    if by_status["submitted"]:
        position, last = latest(by_status["submitted"], *_TIMES)
        values = {tuple(sorted(r["labels"])) for _, r in by_status["submitted"]}
        tally.answer(Answer(item, last["labels"], None, annotator(last.get("user_id")), where), len(values) > 1)
    elif by_status["discarded"]:
        _, last = latest(by_status["discarded"], *_TIMES)
        tally.answer(Answer(item, None, "discarded", annotator(last.get("user_id")), where))
    elif by_status["draft"]:
        tally.none("draft")
    else:
        tally.none("pending")


def _v2_without_status(record: Mapping[str, Any], item: str, responses: list[tuple[int, dict[str, Any]]], where: str,
                       tally: Tally) -> None:
    """``records.to_json()`` keeps the responses' values but not their status; the record's status tells enough.

    A ``completed`` record has at least one submitted response: when all its values agree, that
    is the label. A ``pending`` one has none (with Argilla's default of one submission per
    record). Differing values of a completed record cannot be told apart (a draft or a
    discard of another user looks the same): counted, not imported.
    """
    status = record.get("status")
    if status not in ("completed", "pending"):
        raise DataError(f"{where}: responses without a status and a record status {kind_of(status)}; expected "
                        "completed or pending (Argilla's records.to_json) or responses with a status")
    values = {tuple(sorted(_labels(r["value"], where))) for _, r in responses if r["value"] is not None}
    if status == "pending" or not values:
        tally.none("pending")
    elif len(values) > 1:
        tally.none(AMBIGUOUS)
    else:
        last = [r for _, r in responses if r["value"] is not None][-1]
        tally.answer(Answer(item, _labels(last["value"], where), None, annotator(last.get("user_id")), where))


def _response(value: Any, status: Any, user: Any, where: str, times: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if status is None and times is not None and "status" not in times:  # records.to_json: see _v2_without_status
        return {"value": value, "status": None, "user_id": user}
    if status not in _STATUSES:
        raise DataError(f"{where}: response status is {kind_of(status)}; expected one of {', '.join(_STATUSES)}")
    labels = None if status != "submitted" else _labels(value, where)
    return {"labels": labels, "status": status, "user_id": user, **{k: (times or {}).get(k) for k in _TIMES}}


def _labels(value: Any, where: str) -> tuple[str, ...]:
    """A label question's value: a class name, or a list of them (a multi-label question)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise DataError(f"{where}: the answer to {QUESTION!r} is {kind_of(value)}; expected a class name or a list of them")


def _v1_id(record: Mapping[str, Any], where: str) -> str:
    if record.get("external_id") not in (None, ""):
        return example_id(record["external_id"], where, "external_id")
    metadata = record.get("metadata")
    if isinstance(metadata, str):  # the Hugging Face export writes metadata as a JSON string
        try:
            metadata = json.loads(metadata)
        except json.JSONDecodeError:
            metadata = None
    for key in (ID_KEY, "id"):
        if isinstance(metadata, dict) and metadata.get(key) not in (None, ""):
            return example_id(metadata[key], where, f"metadata.{key}")
    raise DataError(f"{where}: an Argilla v1 record with no external_id (nor metadata.{ID_KEY}); log the records "
                    f"with external_id set to the id in to_label.jsonl")


def _v1_responses(record: Mapping[str, Any], where: str) -> list[tuple[int, dict[str, Any]]]:
    responses = record.get("responses")
    responses = [] if responses is None else expect(responses, list, where, "responses")
    found = []
    for number, response in enumerate(responses, start=1):
        expect(response, dict, where, f"response {number}")
        values = response.get("values") or {}
        expect(values, dict, where, f"response {number}'s values")
        status = response.get("status", "submitted")
        if status == "submitted" and QUESTION not in values:
            raise DataError(f"{where}: response {number} answers {sorted(values)} but not the question {QUESTION!r}")
        answer = values.get(QUESTION)
        value = expect(answer, dict, where, f"values.{QUESTION}").get("value") if answer is not None else None
        found.append((number, _response(value, status, response.get("user_id"), where, response)))
    return found


def _hf_responses(record: Mapping[str, Any], where: str) -> list[tuple[int, dict[str, Any]]]:
    found = []
    for number, response in enumerate(record[QUESTION], start=1):
        expect(response, dict, where, f"{QUESTION}[{number - 1}]")
        found.append((number, _response(response.get("value"), response.get("status"), response.get("user_id"), where)))
    return found


def _v2_responses(record: Mapping[str, Any], where: str) -> list[tuple[int, dict[str, Any]]]:
    answers = record["responses"].get(QUESTION)
    if answers is None:
        others = sorted(record["responses"])
        if others:
            raise DataError(f"{where}: responses to {others} but not to the question {QUESTION!r}")
        return []
    expect(answers, list, where, f"responses.{QUESTION}")
    found = []
    for number, response in enumerate(answers, start=1):
        expect(response, dict, where, f"responses.{QUESTION}[{number - 1}]")
        found.append((number, _response(response.get("value"), response.get("status"), response.get("user_id"),
                                        where, response)))
    return found


def _flat_responses(record: Mapping[str, Any], where: str) -> list[tuple[int, dict[str, Any]]]:
    if FLAT not in record:
        others = sorted(key for key in record if key.endswith(".responses"))
        raise DataError(f"{where}: columns {others} but not {FLAT!r}; name the label question {QUESTION!r}")
    values = record[FLAT]
    if values is None:
        return []
    expect(values, list, where, FLAT)
    statuses = expect(record.get(f"{FLAT}.status"), list, where, f"{FLAT}.status")
    users = record.get(f"{FLAT}.users") or [None] * len(values)
    expect(users, list, where, f"{FLAT}.users")
    if not len(values) == len(statuses) == len(users):
        raise DataError(f"{where}: {FLAT} has {len(values)} values, {len(statuses)} statuses and {len(users)} users")
    return [(k, _response(v, s, u, where)) for k, (v, s, u) in enumerate(zip(values, statuses, users), start=1)]


def _legacy(record: Mapping[str, Any], where: str, tally: Tally) -> None:
    item = example_id(record.get("id"), where, "id")
    status = record.get("status")
    action = _LEGACY.get(str(status).lower()) if isinstance(status, str) else None
    if action is None:
        raise DataError(f"{where}: status is {kind_of(status)}; expected Validated, Discarded or Default")
    who = annotator(record.get("annotation_agent"))
    if action == "pending":
        tally.none("pending")
    elif action == "skip":
        tally.answer(Answer(item, None, "discarded", who, where))
    else:
        value = record.get("annotation")
        tally.answer(Answer(item, () if value is None else _labels(value, where), None, who, where))
