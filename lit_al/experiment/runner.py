"""Runs the cells of a grid as ``lit_al fit`` commands, through a launcher (``launchers``).

A cell whose run directory says ``finished`` is skipped; an interrupted one resumes where it
stopped (the ordinary ``fit`` resume). A cell starts only once the cells it depends on (its
seed's round-0 run) have succeeded, and at most ``launcher.slots`` cells are in flight: local
processes (``jobs`` of them, or one per GPU) or cluster jobs alike.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..atomic import atomic_write_json, atomic_write_text
from ..rundir import STATE_FILE
from .grid import Cell, Grid
from .launchers import Launcher, ProcessLauncher


@dataclass
class CellResult:
    cell: Cell
    status: str  # done | skipped | failed | interrupted | blocked
    log_path: Path | None = None


def run_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run (its ``state.json`` says so)."""
    state = run_dir / STATE_FILE
    if not state.exists():
        return False
    try:
        return bool(json.loads(state.read_text(encoding="utf-8")).get("finished"))
    except (OSError, ValueError):
        return False


def write_manifest(grid: Grid, cells: list[Cell]) -> Path:
    """``EXPERIMENT/experiment.json``: the grid and its cells, which ``lit_al report`` reads."""
    path = grid.experiment_dir / "experiment.json"
    atomic_write_json(path, {
        "grid": grid.source,
        "metric": grid.metric,
        "scenarios": list(grid.scenarios),
        "strategies": list(grid.strategies),
        "seeds": grid.seeds,
        "cells": [
            {"name": c.name, "scenario": c.scenario, "strategy": c.strategy, "seed": c.seed,
             "kind": c.kind, "run_dir": os.path.relpath(c.run_dir, grid.experiment_dir)}
            for c in cells
        ],
    })
    return path


#: Exit codes of ``lit_al fit`` stopped by a signal (128 + SIGINT, 128 + SIGTERM).
INTERRUPTED_CODES = (128 + signal.SIGINT, 128 + signal.SIGTERM)


def cell_status(code: int, run_dir: Path) -> str:
    """``done`` only when the cell succeeded and its run says it is finished."""
    if code == 0 and run_finished(run_dir):
        return "done"
    if code < 0 or code in INTERRUPTED_CODES or code == 0:  # killed, or stopped before its budget was spent
        return "interrupted"
    return "failed"


def run_cells(
    cells: list[Cell], experiment_dir: Path, jobs: int = 1, poll_seconds: float = 0.5, launcher: Launcher | None = None
) -> list[CellResult]:
    """Run every unfinished cell, dependencies first, ``launcher.slots`` at a time (default: ``jobs`` local processes)."""
    launcher = launcher or ProcessLauncher(jobs)
    config_dir = experiment_dir / "configs"
    log_dir = experiment_dir / "logs"
    results = {c.name: CellResult(c, "skipped") for c in cells if run_finished(c.run_dir)}
    pending = [c for c in cells if c.name not in results]
    if results:
        print(f"skipping {len(results)} finished cell(s)", flush=True)
    running: dict[str, tuple[object, Cell, float]] = {}
    try:
        _run_loop(cells, pending, running, results, launcher, config_dir, log_dir, poll_seconds)
    finally:  # interrupted: the cells still running stop too (they resume with the next run)
        for handle, *_ in running.values():
            launcher.stop(handle)
    return [results[c.name] for c in cells]


def _run_loop(cells: list[Cell], pending: list[Cell], running: dict, results: dict[str, CellResult],
              launcher: Launcher, config_dir: Path, log_dir: Path, poll_seconds: float) -> None:
    """Start and collect cells until none is pending; fills ``running`` and ``results``."""
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    total = len(pending)
    started = 0
    while pending or running:
        for name, (handle, cell, start) in list(running.items()):
            code = launcher.poll(handle)
            if code is None:
                continue
            del running[name]
            seconds = time.perf_counter() - start
            status = cell_status(code, cell.run_dir)
            log_path = launcher.log(handle)
            results[name] = CellResult(cell, status, log_path)
            tail = "" if code == 0 else f" (exit {code}; see {log_path})"
            print(f"[{len(results)}/{len(cells)}] {status} {name} in {seconds:.0f} s{tail}", flush=True)
        for cell in list(pending):
            if len(running) >= launcher.slots:
                break
            states = [results[d].status if d in results else None for d in cell.depends_on]
            if any(s in ("failed", "interrupted", "blocked") for s in states):
                pending.remove(cell)
                results[cell.name] = CellResult(cell, "blocked")
                print(f"blocked {cell.name}: {', '.join(cell.depends_on)} failed", flush=True)
                continue
            if any(s is None for s in states):
                continue
            pending.remove(cell)
            started += 1
            stem = cell.name.replace("/", "__")
            config_path = config_dir / f"{stem}.yaml"
            atomic_write_text(config_path, yaml.safe_dump(cell.config, sort_keys=False))
            log_path = log_dir / f"{stem}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, "-m", "lit_al.cli", "fit", "--config", str(config_path.resolve()),
                       "--trainer.enable_progress_bar", "false"]
            running[cell.name] = (launcher.start(cell.name, command, env, log_path), cell, time.perf_counter())
            print(f"start {cell.name} ({started}/{total})", flush=True)
        if running:
            time.sleep(poll_seconds)
        elif pending and not any(all(d in results for d in c.depends_on) for c in pending):
            for cell in pending:  # a dependency that is neither run nor in the grid
                results[cell.name] = CellResult(cell, "blocked")
            pending.clear()
