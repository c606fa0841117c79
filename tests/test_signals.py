"""SIGTERM and SIGINT stop ``lit_al fit`` with 128 + signal and a line saying how to resume.

Real processes on the tiny BERT; the step named by the test (a training step, or a pool
prediction step) is slowed down and announces itself, so the signal lands in that phase.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tiny import write_config, write_dataset

ROOT = Path(__file__).resolve().parents[1]

SLOW_STEP = """
import sys, time, pathlib
from lit_al.model import TextClassifier
from lit_al.outputs.predictor import OutputPredictor
from lit_al.cli import main
step, marker = sys.argv[1], pathlib.Path(sys.argv[2])
owner = OutputPredictor if step == "predict_step" else TextClassifier
original = getattr(owner, step)
def slow(self, *args, **kwargs):
    marker.touch()
    time.sleep(0.3)
    return original(self, *args, **kwargs)
setattr(owner, step, slow)
sys.exit(main(sys.argv[3:]))
"""


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "single")


def _state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())


@pytest.mark.parametrize("signum, step", [
    pytest.param(signal.SIGTERM, "training_step", id="SIGTERM-during_fit"),
    pytest.param(signal.SIGINT, "predict_step", id="SIGINT-during_scoring"),
    pytest.param(signal.SIGTERM, "predict_step", id="SIGTERM-during_scoring", marks=pytest.mark.slow),
    pytest.param(signal.SIGINT, "training_step", id="SIGINT-during_fit", marks=pytest.mark.slow),
])
def test_a_signal_exits_non_zero_and_the_run_resumes(tmp_path, tiny_bert, tiny_data, step, signum):
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=tiny_data, run_dir=run_dir, rounds=1)
    marker = tmp_path / "in_step"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-c", SLOW_STEP, step, str(marker), "fit", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, err
    last = err.strip().splitlines()[-1]
    assert last == (f"lit_al: interrupted by {signal.Signals(signum).name}; "
                    f"the run is unfinished; continue it with: lit_al fit --resume {run_dir}"), err
    assert "Traceback" not in err
    assert not _state(run_dir)["finished"]
    resumed = subprocess.run([sys.executable, "-m", "lit_al.cli", "fit", "--resume", str(run_dir)],
                             capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert _state(run_dir)["finished"]


def test_the_experiment_runner_counts_an_interrupted_cell_as_unfinished(tmp_path, monkeypatch):
    from lit_al.experiment import launchers, runner
    from lit_al.experiment.grid import Cell

    codes = iter([0, 128 + signal.SIGTERM, 1])
    real_popen = subprocess.Popen

    def fake_fit(command, **kwargs):  # the cell's fit exits with the next code, its run unfinished
        return real_popen([sys.executable, "-c", f"import sys; sys.exit({next(codes)})"], **kwargs)

    monkeypatch.setattr(launchers.subprocess, "Popen", fake_fit)
    cells = [Cell("s", name, 0, "strategy", tmp_path / name, {"seed": 0}) for name in ("a", "b", "c")]
    results = runner.run_cells(cells, tmp_path, poll_seconds=0.01)
    assert [r.status for r in results] == ["interrupted", "interrupted", "failed"]
