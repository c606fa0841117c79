"""Runs with a pending batch for the labeling page's tests (built with ``lit_al query`` on the tiny BERT)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from lit_al.cli import main
from tiny import WORDS, make_rows, write_csv

LABELS = list(WORDS)


def make_run(folder: Path, tiny_bert: Path, *, multi_label: bool = False, extra_rows: list[dict] | None = None,
             query: str = "ball|bank|chip", n: int = 8, query_size: int = 6) -> tuple[Path, dict[str, list[str]]]:
    """A run whose round-0 batch (keyword hits of ``query``) waits for a person; and the pool's hidden gold labels."""
    data = folder / "data"
    rows = make_rows(40, seed=1, prefix="pool", multi_label=multi_label) + list(extra_rows or [])
    write_csv(data / "pool.csv", [{"id": r["id"], "text": r["text"]} for r in rows])
    (data / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    key = "labels" if multi_label else "label"
    gold = {r["id"]: r.get(key, "sport").split("|") for r in rows}
    run_dir = folder / "run"
    config = {
        "seed": 2, "run_dir": str(run_dir),
        "model": {"model_name_or_path": str(tiny_bert), "lr": 1e-3},
        "data": {"train": str(data / "pool.csv"), "max_length": 16, "batch_size": 8, "eval_batch_size": 16,
                 "multi_label": multi_label, "initial": {"scenario": "keyword_query", "query": query, "n": n}},
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
        "strategy": "entropy",
        "loop": {"query_size": query_size, "rounds": None},
    }
    path = folder / "config.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    assert main(["query", "--config", str(path)]) == 0
    return run_dir, gold


def copy_run(run_dir: Path, to: Path) -> Path:
    """A private copy of a run (the saved config names the data by absolute path, so the copy works anywhere)."""
    shutil.copytree(run_dir, to)
    config = to / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(str(run_dir), str(to)), encoding="utf-8")
    return to


def state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text(encoding="utf-8"))


def set_suggestions(run_dir: Path, by_position: dict[int, tuple[tuple[str, ...], float]]) -> None:
    """Give the pending batch's items at these positions these suggestions and confidences (the others: none).

    Written with lit_al's own ``LabelState`` (what ``lit_al query`` writes from round 1 on), so a
    round-0 batch can show a confident and a near-chance suggestion without training a model.
    """
    from dataclasses import replace

    from lit_al.data.state import LabelState
    from lit_al.session import load_run_data

    ids = load_run_data(run_dir).pool.ids
    label_state = LabelState.load(run_dir / "state.json", ids)
    n = len(label_state.pending.pool_indices)
    suggestions = tuple(by_position.get(k, ((), 0.0))[0] for k in range(n))
    confidence = tuple(by_position.get(k, ((), float("nan")))[1] for k in range(n))
    label_state.pending = replace(label_state.pending, suggestions=suggestions, confidence=confidence)
    label_state.save()


def wait_for(condition: Callable[[], Any], timeout: float = 240.0, what: str = "the condition") -> Any:
    """``condition()``'s first true value, looked at every 0.1 s; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value
