"""DDP on CPU with the gloo backend, 2 processes: picks identical to 1 process, a whole run, a killed run resumed."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from tiny import write_config, write_dataset

TESTS = Path(__file__).resolve().parent
#: Variables a launcher sets: a run started with any of them would take itself for a rank of another job.
LAUNCHER_VARIABLES = {"LOCAL_RANK", "RANK", "WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT"}
ENV = {**{k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}, "OMP_NUM_THREADS": "1",
       "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
       "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
DDP = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
LIMIT = 600  # seconds: a hung collective must fail the test, not the CI run


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("ddp") / "data", n_pool=80)


def _worker(tiny_bert, pool, weights, devices, out):
    cmd = [sys.executable, str(TESTS / "ddp_worker.py"), str(tiny_bert), str(pool), str(weights), str(devices), str(out)]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=LIMIT, cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_two_processes_pick_exactly_what_one_process_picks(tmp_path, tiny_bert, pool):
    from lit_al.data.module import ActiveDataModule
    from lit_al.model import TextClassifier

    data = ActiveDataModule(train=str(pool / "train.csv"))
    data.load()
    torch.manual_seed(0)
    weights = tmp_path / "weights.pt"
    model = TextClassifier(model_name_or_path=str(tiny_bert), **data.task_info())
    assert model.head_kind == "native"  # the default head: the picks below are the native head's
    torch.save(model.state_dict(), weights)
    one = _worker(tiny_bert, pool, weights, 1, tmp_path / "one.json")
    two = _worker(tiny_bert, pool, weights, 2, tmp_path / "two.json")
    assert (one["world"], two["world"]) == (1, 2)
    assert set(one["results"]) == {"entropy", "margin", "coreset", "kmeans", "badge", "bald_head", "egl_full", "alden", "cal"}
    for name, single in one["results"].items():
        double = two["results"][name]
        assert double["indices"] == single["indices"], name
        for a, b in zip(single["scores"], double["scores"]):
            assert (math.isnan(a) and math.isnan(b)) or a == b, name


def _fit(config: Path, run_dir: Path, *extra: str, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "lit_al.cli", "fit", "--config", str(config), "--run_dir", str(run_dir), *DDP, *extra]
    if wait:
        return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=LIMIT, cwd=run_dir.parent)
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=run_dir.parent,
                            start_new_session=True)


def _state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())


def test_a_three_round_ddp_run_writes_once_and_resumes_after_a_kill(tmp_path, tiny_bert, pool):
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=pool, run_dir=tmp_path / "unused", rounds=3,
                          query_size=8)
    full = tmp_path / "full"
    done = _fit(config, full)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("round   2 |") == 1  # one rank reports
    state = _state(full)
    assert state["finished"] and state["completed_rounds"] == 4 and state["pending"] is None
    assert [sum(r["round"] == k for r in state["records"]) for k in range(4)] == [12, 8, 8, 8]
    metrics = pd.read_csv(full / "metrics.csv")
    assert metrics["round"].tolist() == [0, 1, 2, 3] and metrics["labeled"].tolist() == [12, 20, 28, 36]
    for k in range(3):
        selected = pd.read_csv(full / "rounds" / f"round_{k:03d}" / "selected.csv")
        assert len(selected) == 8 and selected["pool_index"].is_unique
        assert not (full / "rounds" / f"round_{k:03d}" / "outputs").exists()

    killed = tmp_path / "killed"
    process = _fit(config, killed, wait=False)
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:  # kill the launcher and its ranks once round 0 is checkpointed
        state_path = killed / "state.json"
        if state_path.exists() and json.loads(state_path.read_text()).get("completed_rounds", 0) >= 1:
            break
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert not _state(killed)["finished"]
    resumed = _fit(config, killed, "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _state(killed)["records"] == state["records"]
    pd.testing.assert_frame_equal(pd.read_csv(killed / "metrics.csv")[["round", "labeled", "test_accuracy"]],
                                  metrics[["round", "labeled", "test_accuracy"]])
