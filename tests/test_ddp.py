"""DDP on CPU with the gloo backend, at the default batch sizes with dev and test sets smaller than one
evaluation batch: picks and metrics identical to 1 process on 2 and 3 processes, a whole run, a killed
run resumed, and two nodes of one process each (torchrun) on one machine."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
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
    # dev and test sets within one batch of the default eval_batch_size (128), so most processes get
    # no batch of their own, and of sizes 2 and 3 do not divide: a DistributedSampler would pad them
    # with repeated rows, counted twice by the metrics
    return write_dataset(tmp_path_factory.mktemp("ddp") / "data", n_pool=80, n_dev=25, n_test=31)


def _worker(tiny_bert, pool, weights, devices, out):
    cmd = [sys.executable, str(TESTS / "ddp_worker.py"), str(tiny_bert), str(pool), str(weights), str(devices), str(out)]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=LIMIT, cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def weights(tmp_path_factory, tiny_bert, pool):
    from lit_al.data.module import ActiveDataModule
    from lit_al.model import TextClassifier

    data = ActiveDataModule(train=str(pool / "train.csv"))
    data.load()
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "weights.pt"
    model = TextClassifier(model_name_or_path=str(tiny_bert), **data.task_info())
    assert model.head_kind == "native"  # the default head: the picks and metrics compared below are the native head's
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, tiny_bert, pool, weights):
    return _worker(tiny_bert, pool, weights, 1, tmp_path_factory.mktemp("one") / "one.json")


def _evaluate_in_one_process(tiny_bert, pool, weights: Path, root: Path) -> dict:
    """Dev and test metrics of ``weights``, computed by one process (the reference for N processes)."""
    import lightning.pytorch as pl
    from ddp_worker import TEST_BATCH_SIZES, data_module, metrics

    from lit_al.model import TextClassifier, load_tokenizer

    data = data_module(str(pool))
    data.load()
    data.tokenize(load_tokenizer({"model_name_or_path": str(tiny_bert)}))
    model = TextClassifier(model_name_or_path=str(tiny_bert), **data.task_info())
    model.load_state_dict(torch.load(weights, weights_only=True))
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, default_root_dir=str(root))
    out = {"val": metrics(trainer.validate(model, datamodule=data, verbose=False)[0]), "test": {}}
    for size in TEST_BATCH_SIZES:
        data.eval_batch_size = size
        out["test"][str(size)] = metrics(trainer.test(model, datamodule=data, verbose=False)[0])
    return out


def _assert_same_metrics(got: dict[str, float], want: dict[str, float]) -> None:
    """Equal counts give equal ratios exactly; a mean loss summed in another order is equal to float precision."""
    assert set(got) == set(want) and any(k.endswith("_loss") for k in want) and len(want) > 1
    for key, value in want.items():
        assert got[key] == (pytest.approx(value, rel=1e-6, abs=1e-7) if key.endswith("_loss") else value), key


@pytest.mark.parametrize("devices", [2, 3])
def test_processes_pick_and_measure_exactly_what_one_process_does(devices, tmp_path, tiny_bert, pool, weights,
                                                                   one_process):
    many = _worker(tiny_bert, pool, weights, devices, tmp_path / "many.json")
    assert (one_process["world"], many["world"]) == (1, devices)
    assert set(one_process["results"]) == {"entropy", "margin", "coreset", "kmeans", "badge", "bald_head", "egl_full",
                                           "alden", "cal", "alden_one_batch", "plugin_flagged"}
    for name, single in one_process["results"].items():
        sharded = many["results"][name]
        assert sharded["indices"] == single["indices"], name
        for a, b in zip(single["scores"], sharded["scores"]):
            assert (math.isnan(a) and math.isnan(b)) or a == b, name
    # the metrics the N processes logged are one process's over the same weights: every dev and test
    # row counted once, at one batch (fewer than the processes) and at several dealt unevenly
    reference = _evaluate_in_one_process(tiny_bert, pool, tmp_path / "many.json.pt", tmp_path)
    _assert_same_metrics(many["val"], reference["val"])
    for size, values in reference["test"].items():
        _assert_same_metrics(many["test"][size], values)


def _fit(config: Path, run_dir: Path, *extra: str, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "lit_al.cli", "fit", "--config", str(config), "--run_dir", str(run_dir), *DDP, *extra]
    if wait:
        return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=LIMIT, cwd=run_dir.parent)
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=run_dir.parent,
                            start_new_session=True)


def _state(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())


@pytest.fixture(scope="module")
def fit_config(tmp_path_factory, tiny_bert, pool) -> Path:
    """A 3-round config at lit_al's default batch sizes: the 25-row dev and 31-row test sets are one batch each."""
    root = tmp_path_factory.mktemp("fit")
    config = write_config(root / "c.yaml", model=tiny_bert, data=pool, run_dir=root / "unused", rounds=3, query_size=8)
    values = json.loads(config.read_text())
    for key in ("batch_size", "eval_batch_size"):
        del values["data"][key]
    config.write_text(json.dumps(values), encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def full_run(fit_config) -> tuple[Path, str]:
    """The run directory and standard output of a whole 2-process run of ``fit_config``."""
    full = fit_config.parent / "full"
    done = _fit(fit_config, full)
    assert done.returncode == 0, done.stderr[-3000:]
    return full, done.stdout


def test_a_three_round_ddp_run_writes_once_and_resumes_after_a_kill(tmp_path, fit_config, full_run):
    config = fit_config
    full, stdout = full_run
    assert stdout.count("round   2 |") == 1  # one rank reports
    state = _state(full)
    assert state["finished"] and state["completed_rounds"] == 4 and state["pending"] is None
    assert [sum(r["round"] == k for r in state["records"]) for k in range(-1, 3)] == [12, 8, 8, 8]  # initial, batches 0-2
    metrics = pd.read_csv(full / "metrics.csv")
    assert metrics["round"].tolist() == [0, 1, 2, 3] and metrics["labeled"].tolist() == [12, 20, 28, 36]
    assert metrics["test_accuracy"].notna().all() and metrics["best_epoch"].notna().all()
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("launcher", ["torchrun", "lightning"])
def test_two_nodes_of_one_process_run_what_one_node_of_two_processes_runs(launcher, fit_config, full_run):
    """README's multi-node commands, both nodes on this machine: node ranks 0 and 1 of one process each,
    meeting at 127.0.0.1, writing one shared run directory; started by torchrun, or by Lightning's own
    launcher (``lit_al fit`` with MASTER_ADDR, MASTER_PORT and NODE_RANK set)."""
    shared = fit_config.parent / f"two_nodes_{launcher}"
    port = str(_free_port())
    fit = ["-m", "lit_al.cli", "fit", "--config", str(fit_config), "--run_dir", str(shared),
           "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.num_nodes", "2"]
    nodes, logs = [], []
    for node_rank in (0, 1):
        env = ENV
        if launcher == "torchrun":
            cmd = [str(Path(sys.executable).parent / "torchrun"), "--nnodes", "2", "--nproc_per_node", "1",
                   "--node_rank", str(node_rank), "--master_addr", "127.0.0.1", "--master_port", port, *fit]
        else:
            cmd = [sys.executable, *fit]
            env = {**ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "NODE_RANK": str(node_rank)}
        log_path = fit_config.parent / f"{launcher}_node_{node_rank}.log"  # files, not pipes: a full pipe would stall a rank
        logs.append(log_path)
        with open(log_path, "w") as log_file:
            nodes.append(subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                          cwd=fit_config.parent, start_new_session=True))
    try:
        codes = [node.wait(timeout=LIMIT) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
    outputs = [path.read_text() for path in logs]
    assert codes == [0, 0], "\n".join(text[-3000:] for text in outputs)
    assert outputs[0].count("round   2 |") == 1 and "round   2 |" not in outputs[1]  # node 0's process reports
    full, _ = full_run
    state = _state(shared)
    assert state["finished"] and state["records"] == _state(full)["records"]  # the same picks, round by round
    columns = ["round", "labeled", "test_accuracy", "test_macro_f1"]
    pd.testing.assert_frame_equal(pd.read_csv(shared / "metrics.csv")[columns], pd.read_csv(full / "metrics.csv")[columns])
