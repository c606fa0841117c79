"""Runs the cells of a grid as ``lit_al fit`` processes, ``jobs`` at a time.

A cell whose run directory says ``finished`` is skipped; an interrupted one resumes where it
stopped (the ordinary ``fit`` resume). A cell runs only once the cells it depends on (its
seed's round-0 run) have succeeded. Each process gets ``threads.default_threads(jobs)``
intra-op threads (the CPUs available divided by ``jobs``, unless ``OMP_NUM_THREADS`` is set),
because oversubscribed torch threads slow every step down many times over on a small machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..io import atomic_write_json, atomic_write_text
from ..threads import default_threads
from .grid import Cell, Grid


@dataclass
class CellResult:
    cell: Cell
    status: str  # done | skipped | failed | blocked
    log_path: Path | None = None


def run_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run (its ``state.json`` says so)."""
    state = run_dir / "state.json"
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


def run_cells(cells: list[Cell], experiment_dir: Path, jobs: int = 1, poll_seconds: float = 0.5) -> list[CellResult]:
    """Run every unfinished cell, at most ``jobs`` at a time, dependencies first."""
    jobs = max(1, int(jobs))
    config_dir = experiment_dir / "configs"
    log_dir = experiment_dir / "logs"
    results = {c.name: CellResult(c, "skipped") for c in cells if run_finished(c.run_dir)}
    pending = [c for c in cells if c.name not in results]
    if results:
        print(f"skipping {len(results)} finished cell(s)", flush=True)
    running: dict[str, tuple[subprocess.Popen, Cell, float, Path]] = {}
    threads = str(default_threads(jobs))
    total = len(pending)
    started = 0
    while pending or running:
        for name, (process, cell, start, log_path) in list(running.items()):
            code = process.poll()
            if code is None:
                continue
            del running[name]
            seconds = time.perf_counter() - start
            status = "done" if code == 0 else "failed"
            results[name] = CellResult(cell, status, log_path)
            tail = "" if code == 0 else f" (exit {code}; see {log_path})"
            print(f"[{len(results)}/{len(cells)}] {status} {name} in {seconds:.0f} s{tail}", flush=True)
        for cell in list(pending):
            if len(running) >= jobs:
                break
            states = [results[d].status if d in results else None for d in cell.depends_on]
            if any(s in ("failed", "blocked") for s in states):
                pending.remove(cell)
                results[cell.name] = CellResult(cell, "blocked")
                print(f"blocked {cell.name}: {', '.join(cell.depends_on)} failed", flush=True)
                continue
            if any(s is None for s in states):
                continue
            pending.remove(cell)
            started += 1
            config_path = config_dir / f"{cell.name.replace('/', '__')}.yaml"
            atomic_write_text(config_path, yaml.safe_dump(cell.config, sort_keys=False))
            log_path = log_dir / f"{cell.name.replace('/', '__')}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, TOKENIZERS_PARALLELISM="false")
            with open(log_path, "ab") as handle:
                process = subprocess.Popen(
                    [sys.executable, "-m", "lit_al.cli", "fit", "--config", str(config_path),
                     "--trainer.enable_progress_bar", "false"],
                    stdout=handle, stderr=subprocess.STDOUT, env=env,
                )
            running[cell.name] = (process, cell, time.perf_counter(), log_path)
            print(f"start {cell.name} ({started}/{total})", flush=True)
        if running:
            time.sleep(poll_seconds)
        elif pending and not any(all(d in results for d in c.depends_on) for c in pending):
            for cell in pending:  # a dependency that is neither run nor in the grid
                results[cell.name] = CellResult(cell, "blocked")
            pending = []
    return [results[c.name] for c in cells]
