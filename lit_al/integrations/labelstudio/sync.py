"""Push a run's pending batch to its Label Studio project; pull the answers back into the run.

``push`` imports the batch's tasks the project does not hold yet (a second push adds
nothing). ``pull`` reads the project's tasks through the API, turns the annotations of
the pending batch into answers with lit_al's Label Studio reader, and imports them through
``session.import_answers``: validated as a whole, one atomic write, under the run's lock,
exactly as ``lit_al label`` does. A pull killed at any moment loses nothing (the answers
stay on the server) and a pull repeated imports nothing twice (an answer already recorded
changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ...data.state import LabelState
from ...errors import ConfigError
from ...labeling import Answer, ImportSummary, label_studio_answers
from ...run_lock import run_lock
from ...rundir import STATE_FILE
from ...session import import_answers, load_run_files
from .connection import Connection, make_client, translated_errors
from .project import (BINDING_FILE, Binding, batch_tasks, ensure_project, load_binding, model_version, project_tasks,
                      task_key)


@dataclass(frozen=True)
class PushResult:
    """What a push did: the project, the round pushed, tasks added and tasks the project already had."""

    project: int | None
    round: int | None
    added: int = 0
    present: int = 0

    def line(self, url: str) -> str:
        if self.round is None:
            return "no batch is pending (run lit_al query, or the run is finished): nothing to push"
        return (f"round {self.round}: {self.added} task(s) added, {self.present} already there; "
                f"project {self.project} at {url}/projects/{self.project}")


@dataclass(frozen=True)
class BatchAnswers:
    """The answers to the pending batch found in the project, and how many of its items have one."""

    round: int
    answers: list[Answer]
    size: int
    foreign: int  # tasks in the project that lit_al did not write (ignored)
    missing: int = 0  # items of the batch without a task in the project (not pushed)
    disagreements: tuple[str, ...] = ()  # ids whose submitted annotations disagree (the latest counts)

    @property
    def answered(self) -> int:
        return len(self.answers)


@dataclass(frozen=True)
class PullResult:
    """What a pull imported (``summary``) out of the answers found (``found``)."""

    found: BatchAnswers | None
    summary: ImportSummary | None

    def line(self) -> str:
        if self.found is None or self.summary is None:
            return "no batch is pending (run lit_al query, or the run is finished): nothing to pull"
        extra = f" ({self.found.foreign} task(s) without data.lit_al_id ignored)" if self.found.foreign else ""
        if self.found.missing:
            extra += f"; {self.found.missing} of the batch not in the project (push it: lit_al labelstudio push RUN)"
        if self.found.disagreements:
            extra += (f"; annotators disagree on {len(self.found.disagreements)} item(s), the latest answer counts: "
                      + ", ".join(self.found.disagreements[:5]) + (" ..." if len(self.found.disagreements) > 5 else ""))
        return (f"round {self.found.round}: {self.found.answered} of {self.found.size} answered in Label Studio{extra}; "
                f"{self.summary.line()}")


def load_run(run_dir: Path) -> tuple[Any, LabelState]:
    """The run's pool and label schema (``DataFiles``: neither torch nor Lightning is started) and its label state."""
    data = load_run_files(run_dir)
    return data, LabelState.load(run_dir / STATE_FILE, data.pool.ids)


def push(run_dir: Path, connection: Connection, *, title: str | None = None, project: int | None = None,
         client: Any | None = None) -> PushResult:
    """Import the run's pending batch into its project (created if needed); tasks already there are left alone."""
    data, state = load_run(run_dir)
    client = client or make_client(connection)
    binding = ensure_project(client, connection, run_dir, data.schema, title=title, project=project)
    pending = state.pending
    if pending is None:
        return PushResult(binding.project, None)
    rows = list(pending.pool_indices)
    n = len(rows)
    tasks = batch_tasks([data.pool.ids[i] for i in rows], [data.pool.texts[i] for i in rows],
                        list(pending.suggestions) or [()] * n, list(pending.confidence) or [float("nan")] * n,
                        list(pending.scores), pending.round)
    # under the run's lock: two pushes at once (or a push beside watch) must not both import a task
    with run_lock(run_dir, writes=True, wait=False):
        present = {task_key(task) for task in project_tasks(client, connection, binding.project)}
        new = [task for task in tasks if task_key(task) not in present]
        with translated_errors(connection, f"importing tasks into project {binding.project}"):
            if new:
                client.projects.import_tasks(binding.project, request=new, commit_to_project=True)
            if any(task.get("predictions") for task in tasks):  # Label Studio refuses a version no prediction has
                # the project shows this round's predictions as pre-annotations
                client.projects.update(binding.project, model_version=model_version(pending.round))
    return PushResult(binding.project, pending.round, len(new), len(tasks) - len(new))


def bound_project(run_dir: Path) -> Binding:
    binding = load_binding(run_dir)
    if binding is None or binding.project is None:
        raise ConfigError(f"{run_dir}: no Label Studio project yet ({BINDING_FILE}); run: lit_al labelstudio push {run_dir}")
    return binding


def batch_answers(tasks: Sequence[dict[str, Any]], pending_ids: Sequence[str], round_index: int,
                  users: dict[int, str], where: str) -> BatchAnswers:
    """The answers to the pending batch among the project's ``tasks``.

    The tasks are read by lit_al's Label Studio reader (``labeling.label_studio``), so a live
    project and an exported file give the same answers (the latest submitted annotation wins;
    a skip only when every annotation is cancelled). Several tasks may hold one example
    (proposed again after a round left it unanswered): the answered task of the latest round counts.
    """
    wanted = set(pending_ids)
    mine: list[dict[str, Any]] = []
    rounds: list[int] = []
    foreign = 0
    for task in tasks:
        key = task_key(task)
        if key is None:
            foreign += 1
        elif key[0] in wanted:
            mine.append(_with_annotators(task, users))
            rounds.append(key[1])
    wheres = [f"{where}: task {task.get('id')}" for task in mine]
    found = label_studio_answers(mine, source=where, wheres=wheres)
    round_of = dict(zip(wheres, rounds))
    best: dict[str, tuple[int, Answer]] = {}
    for answer in found.answers:
        task_round = round_of[answer.where]
        if answer.id not in best or task_round > best[answer.id][0]:
            best[answer.id] = (task_round, answer)
    answers = [best[i][1] for i in pending_ids if i in best]
    missing = len(wanted - {task_key(task)[0] for task in mine})
    return BatchAnswers(round_index, answers, len(pending_ids), foreign, missing, tuple(found.disagreements))


def _with_annotators(task: dict[str, Any], users: dict[int, str]) -> dict[str, Any]:
    """The API names annotators by user id; the run records their e-mail (as an export does)."""
    annotations = task.get("annotations")
    if not isinstance(annotations, list):
        return task
    named = [{**a, "completed_by": {"email": users[a["completed_by"]]}}
             if isinstance(a, dict) and isinstance(a.get("completed_by"), int) and a["completed_by"] in users else a
             for a in annotations]
    return {**task, "annotations": named}


def fetch_answers(run_dir: Path, connection: Connection, data: Any, state: Any,
                  client: Any | None = None) -> BatchAnswers | None:
    """The answers to the run's pending batch now in its project (None: no batch is pending).

    ``data`` and ``state``: the run's loaded pool and label state (``load_run``).
    """
    pending = state.pending
    if pending is None:
        return None
    binding = bound_project(run_dir)
    client = client or make_client(connection)
    tasks = project_tasks(client, connection, binding.project)
    with translated_errors(connection, "listing users"):
        users = {int(user.id): str(user.email or user.username or user.id) for user in client.users.list()}
    ids = [data.pool.ids[i] for i in pending.pool_indices]
    return batch_answers(tasks, ids, pending.round, users, f"Label Studio project {binding.project}")


def pull(run_dir: Path, connection: Connection, *, overwrite: bool = False, client: Any | None = None) -> PullResult:
    """Import the answers to the pending batch found in the project (see the module docstring)."""
    data, state = load_run(run_dir)
    found = fetch_answers(run_dir, connection, data, state, client)
    if found is None:
        return PullResult(None, None)
    return PullResult(found, import_found(run_dir, data, found.answers, overwrite=overwrite))


def import_found(run_dir: Path, data: Any, answers: Sequence[Answer], *, overwrite: bool = False,
                 how_to_overwrite: str = "pull again with --overwrite true") -> ImportSummary:
    """Import answers found in the project into the run: ``lit_al label``'s validated, atomic, locked import."""
    return import_answers(run_dir, answers, schema=data.schema, ids=data.pool.ids, overwrite=overwrite,
                          how_to_overwrite=how_to_overwrite)
