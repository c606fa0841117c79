"""A run's Label Studio project: found or created, recorded in the run directory, and the tasks of a batch.

The run directory's ``labelstudio.json`` names the server (without credentials) and the
project; never the key. It is written before the project is created, with a random
token that also goes into the project's description, so a push killed between creating
the project and recording its id finds that project again instead of making a second one.

A task is one proposed example of one round: ``data.lit_al_id`` (the example id: Label
Studio's exports overwrite ``id`` with their own task id), ``data.text``,
``data.lit_al_round`` and ``data.lit_al_score`` (the strategy's score, a column the
Data Manager sorts by), and the model's suggestion as a prediction (``model_version`` the
round, ``score`` its confidence). ``(lit_al_id, lit_al_round)`` is the task's key: a push
imports only the keys the project does not hold yet.
"""

from __future__ import annotations

import json
import math
import secrets
import warnings
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from ...atomic import atomic_write_json
from ...data.schema import LabelSchema
from ...errors import ConfigError
from ...labeling.formats import _label_studio_config, label_studio_task
from ...labeling.names import ID_KEY, QUESTION
from .connection import Connection, translated_errors

BINDING_FILE = "labelstudio.json"
ROUND_KEY = "lit_al_round"
SCORE_KEY = "lit_al_score"
#: Label Studio refuses longer project titles.
TITLE_LIMIT = 50
PAGE_SIZE = 100


@dataclass(frozen=True)
class Binding:
    """Which Label Studio project a run labels in (``project`` is None until it is created)."""

    url: str
    token: str
    project: int | None = None
    title: str = ""


def load_binding(run_dir: Path) -> Binding | None:
    path = run_dir / BINDING_FILE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        return Binding(str(payload["url"]), str(payload["token"]), payload.get("project"), str(payload.get("title", "")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not lit_al's Label Studio record ({exc}); delete it to start a new project") from None


def save_binding(run_dir: Path, binding: Binding) -> None:
    atomic_write_json(run_dir / BINDING_FILE, asdict(binding))


def model_version(round_index: int) -> str:
    """The predictions' ``model_version``: the round whose model made them."""
    return f"lit_al round {round_index}"


def batch_tasks(ids: Sequence[str], texts: Sequence[str], suggestions: Sequence[Sequence[str]],
                confidence: Sequence[float], scores: Sequence[float], round_index: int) -> list[dict[str, Any]]:
    """The tasks of one proposed batch, in proposal order (see the module docstring)."""
    tasks = []
    for k, example_id in enumerate(ids):
        item = {"id": example_id, "text": texts[k], "suggestion": tuple(suggestions[k]),
                "confidence": _finite(confidence[k]), "score": _finite(scores[k])}
        task = label_studio_task(item, round_index)
        task["data"] = {"text": texts[k], ID_KEY: example_id, ROUND_KEY: round_index, SCORE_KEY: item["score"]}
        for prediction in task.get("predictions", []):
            prediction["model_version"] = model_version(round_index)
        tasks.append(task)
    return tasks


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def task_key(task: dict[str, Any]) -> tuple[str, int] | None:
    """A task's ``(lit_al_id, lit_al_round)``, or None for a task lit_al did not write."""
    data = task.get("data") or {}
    example_id, round_index = data.get(ID_KEY), data.get(ROUND_KEY)
    if example_id is None or round_index is None:
        return None
    try:
        return str(example_id), int(round_index)
    except (TypeError, ValueError):
        return None


def project_tasks(client: Any, connection: Connection, project: int) -> list[dict[str, Any]]:
    """Every task of the project with its annotations (the SDK pages through them), as plain dicts."""
    with translated_errors(connection, f"reading the tasks of project {project}"), warnings.catch_warnings():
        # the SDK's task models type some fields by role; their dump warns about values it keeps as they came
        warnings.simplefilter("ignore")
        pager = client.tasks.list(project=project, fields="all", page_size=PAGE_SIZE)
        return [task.dict() if hasattr(task, "dict") else dict(task) for task in pager]


def ensure_project(client: Any, connection: Connection, run_dir: Path, schema: LabelSchema, *,
                   title: str | None = None, project: int | None = None) -> Binding:
    """The run's project: ``project`` (an existing one, checked), the recorded one, or a new one."""
    binding = load_binding(run_dir)
    if binding is not None and binding.url != connection.shown_url and project is None:
        raise ConfigError(f"{run_dir / BINDING_FILE}: this run labels in project {binding.project} on {binding.url}, "
                          f"not on {connection.shown_url}; connect there, or give --project ID on this server")
    if project is not None:
        _check_config(_get_project(client, connection, project), project, schema)
        binding = Binding(connection.shown_url, binding.token if binding else secrets.token_hex(8), project,
                          binding.title if binding else "")
        save_binding(run_dir, binding)
        return binding
    if binding is not None and binding.project is not None:
        _get_project(client, connection, binding.project)
        return binding
    if binding is None:
        binding = Binding(connection.shown_url, secrets.token_hex(8), None, _title(title, run_dir))
        found = _find_by_token(client, connection, binding.token)  # a new token: this checks the server and key
        save_binding(run_dir, binding)  # before the project exists: a crash after its creation still finds it
    else:
        found = _find_by_token(client, connection, binding.token)
    if found is None:
        with translated_errors(connection, "creating the project"):
            created = client.projects.create(
                title=binding.title, label_config=_label_studio_config(schema), show_collab_predictions=True,
                description=f"Active learning with lit_al: run {run_dir.resolve()} [lit_al:{binding.token}]",
            )
        found = int(created.id)
    binding = Binding(binding.url, binding.token, found, binding.title)
    save_binding(run_dir, binding)
    return binding


def _title(title: str | None, run_dir: Path) -> str:
    text = (title or f"lit_al {run_dir.resolve().name}").strip()
    if not text or len(text) > TITLE_LIMIT:
        raise ConfigError(f"--title {text!r}: Label Studio wants 1 to {TITLE_LIMIT} characters")
    return text


def _get_project(client: Any, connection: Connection, project: int) -> Any:
    with translated_errors(connection, f"project {project}"):
        return client.projects.get(id=project)


def _find_by_token(client: Any, connection: Connection, token: str) -> int | None:
    with translated_errors(connection, "listing projects"):
        for candidate in client.projects.list():
            if f"[lit_al:{token}]" in (getattr(candidate, "description", None) or ""):
                return int(candidate.id)
    return None


def _check_config(project: Any, number: int, schema: LabelSchema) -> None:
    """An existing project must ask lit_al's question: a ``Choices`` named ``label`` over the schema's names, on ``$text``."""
    try:
        root = ElementTree.fromstring(getattr(project, "label_config", "") or "")
    except ElementTree.ParseError as exc:
        raise ConfigError(f"Label Studio project {number}: its labeling config is not XML ({exc})") from None
    choices = next((node for node in root.iter("Choices") if node.get("name") == QUESTION), None)
    texts = {node.get("name"): node.get("value") for node in root.iter("Text")}
    names = sorted(node.get("value") or "" for node in choices.iter("Choice")) if choices is not None else []
    if choices is None or texts.get(choices.get("toName")) != "$text" or names != sorted(schema.source_names):
        raise ConfigError(f"Label Studio project {number}: its labeling config does not ask lit_al's question (a Choices "
                          f"named {QUESTION!r} on $text with the choices {list(schema.source_names)}); found {names}; "
                          "leave out --project to let lit_al create one")
