"""A stand-in for the Label Studio SDK client, kept in a JSON file, for the watcher's fast tests.

It answers the calls lit_al makes (``projects.list/get/create/update/import_tasks``,
``tasks.list``, ``users.list``) with the shapes the real server's API gives (the tasks as
``task.dict()`` returns them, annotations as the labeling page submits them; see the live test
``tests/test_labelstudio.py``, which runs the same lit_al code against a real server). It is a
file so that a watcher in another process (one the test SIGKILLs) and the test share one project.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ANNOTATOR = {"id": 7, "email": "ana@example.com", "username": "ana"}


class FakeLabelStudio:
    """The SDK's ``LabelStudio`` client over one JSON file (``path``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            self._save({"projects": [], "tasks": [], "next_task": 1, "imports": []})
        self.projects = SimpleNamespace(list=self._projects, get=self._project, create=self._create,
                                        update=self._update, import_tasks=self._import)
        self.tasks = SimpleNamespace(list=self._tasks)
        self.users = SimpleNamespace(list=lambda: [SimpleNamespace(**ANNOTATOR)])

    # ------------------------------------------------------------------ the file
    def load(self) -> dict[str, Any]:
        return json.loads(self.path.read_text(encoding="utf-8"))

    def _save(self, db: dict[str, Any]) -> None:
        handle, name = tempfile.mkstemp(dir=self.path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(db, out)
        os.replace(name, self.path)

    # ------------------------------------------------------------------ the SDK's calls
    def _projects(self):
        return [SimpleNamespace(**project) for project in self.load()["projects"]]

    def _project(self, id: int):
        return next(SimpleNamespace(**p) for p in self.load()["projects"] if p["id"] == id)

    def _create(self, title: str, label_config: str, description: str = "", **_: Any):
        db = self.load()
        project = {"id": len(db["projects"]) + 1, "title": title, "label_config": label_config, "description": description,
                   "model_version": ""}
        db["projects"].append(project)
        self._save(db)
        return SimpleNamespace(**project)

    def _update(self, id: int, **fields: Any):
        db = self.load()
        next(p for p in db["projects"] if p["id"] == id).update(fields)
        self._save(db)

    def _import(self, id: int, request: list[dict[str, Any]], **_: Any):
        db = self.load()
        for task in request:
            db["tasks"].append({"id": db["next_task"], "project": id, "data": task["data"], "annotations": [],
                                "predictions": task.get("predictions", [])})
            db["next_task"] += 1
        db["imports"].append([task["data"]["lit_al_id"] for task in request])
        self._save(db)

    def _tasks(self, project: int, **_: Any):
        return [task for task in self.load()["tasks"] if task["project"] == project]

    # ------------------------------------------------------------------ what the test's annotator does
    def round_tasks(self, round_index: int) -> list[dict[str, Any]]:
        return [task for task in self.load()["tasks"] if task["data"]["lit_al_round"] == round_index]

    def annotate(self, round_index: int, gold: dict[str, list[str]], count: int, *, skip: int = 0) -> int:
        """Answer up to ``count`` open tasks of a round (the first ``skip`` cancelled), as the labeling page submits them."""
        db = self.load()
        done = 0
        for task in db["tasks"]:
            if done == count or task["data"]["lit_al_round"] != round_index or task["annotations"]:
                continue
            cancelled = done < skip
            choices = [] if cancelled else [{"from_name": "label", "to_name": "text", "type": "choices",
                                             "value": {"choices": gold[task["data"]["lit_al_id"]]}}]
            task["annotations"].append({"id": 1000 + task["id"], "completed_by": ANNOTATOR["id"], "was_cancelled": cancelled,
                                        "result": choices, "created_at": "2026-01-01T00:00:00Z",
                                        "updated_at": "2026-01-01T00:00:00Z"})
            done += 1
        self._save(db)
        return done
