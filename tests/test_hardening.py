"""Issue 14: bad input is one line and writes nothing; overwrite, resume and temp files behave."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lit_al.cli import main
from tiny import write_config, write_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "single")


def _config(tmp_path, bert, data, run_dir=None, **changes):
    path = write_config(tmp_path / "c.yaml", model=bert, data=data, run_dir=run_dir or tmp_path / "run", rounds=1)
    payload = json.loads(path.read_text())
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            payload[section][key] = value
        else:
            payload[section] = value
    path.write_text(json.dumps(payload))
    return path


def _error(argv, capsys) -> tuple[int, str]:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    return rc, (err.splitlines() or [""])[-1]


def _corrupt_model(tmp_path, bert):
    copy = tmp_path / "broken-bert"
    shutil.copytree(bert, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    return ["--model.model_name_or_path", str(copy)]


def _run_dir_is_a_file(tmp_path, bert):
    (tmp_path / "run").write_text("not a folder")
    return []


def _labels_not_utf8(tmp_path, bert):
    (tmp_path / "labels.txt").write_bytes("sport\nmoney\ntech\xe9\n".encode("latin-1"))
    return ["--data.labels", str(tmp_path / "labels.txt")]


def _state_without_config(tmp_path, bert):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "state.json").write_text(json.dumps({"n_pool": 80, "records": [], "completed_rounds": 0}))
    return []


def _spawned_processes(tmp_path, bert):
    return ["--trainer.strategy", "ddp_spawn", "--trainer.devices", "2"]


def _csv_logger_without_save_dir(tmp_path, bert):
    return ["--trainer.logger", "CSVLogger"]


def _tensorboard_missing(tmp_path, bert, monkeypatch):
    import lightning.fabric.loggers.tensorboard as tb

    monkeypatch.setattr(tb, "_TENSORBOARD_AVAILABLE", False)
    monkeypatch.setattr(tb, "_TENSORBOARDX_AVAILABLE", False)
    return ["--trainer.logger", "TensorBoardLogger", "--trainer.logger.save_dir", str(tmp_path / "tb")]


def _no_write_permission(tmp_path, bert, monkeypatch):
    real = os.access

    def access(path, mode, **kwargs):  # tmp_path as a 0500 folder is to a user who is not root
        return False if Path(path) == tmp_path and mode & os.W_OK else real(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    return []


def _labels_path_missing(tmp_path, bert):
    return ["--data.labels", str(tmp_path / "nolabels.txt")]


BAD_INPUTS = [
    (_labels_path_missing, "nolabels.txt: label file not found"),
    (_labels_not_utf8, "labels.txt: not UTF-8 text (byte 16); save the label file as UTF-8"),
    (_corrupt_model, "cannot load the encoder: Error while deserializing header"),
    (_run_dir_is_a_file, "is a file, not a folder"),
    (_no_write_permission, "run: permission denied (cannot write in"),
    (_state_without_config, "holds a state.json without its config.yaml"),
    (_spawned_processes, "trainer.strategy: DDPStrategy starts its processes with 'spawn'"),
    (_csv_logger_without_save_dir, "the following arguments are required: save_dir"),
    (_tensorboard_missing, 'trainer.logger TensorBoardLogger: a package it needs is missing'),
]


@pytest.mark.parametrize("make, message", BAD_INPUTS, ids=[f.__name__.strip("_") for f, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, tiny_bert, tiny_data, capsys, monkeypatch, make, message):
    config = _config(tmp_path, tiny_bert, tiny_data)
    args = make(tmp_path, tiny_bert, monkeypatch) if "monkeypatch" in make.__code__.co_varnames else make(tmp_path, tiny_bert)
    before = sorted(p.name for p in (tmp_path / "run").iterdir()) if (tmp_path / "run").is_dir() else None
    rc, line = _error(["fit", "--config", str(config), *args], capsys)
    assert rc != 0 and line.startswith("lit_al: error:") and message in line, line
    after = sorted(p.name for p in (tmp_path / "run").iterdir()) if (tmp_path / "run").is_dir() else None
    assert after == before
    assert not (tmp_path / "tb").exists()


def test_tensorboard_missing_names_the_extra(tmp_path, tiny_bert, tiny_data, capsys, monkeypatch):
    args = _tensorboard_missing(tmp_path, tiny_bert, monkeypatch)
    _, line = _error(["fit", "--config", str(_config(tmp_path, tiny_bert, tiny_data)), *args], capsys)
    assert 'pip install "lit_al[tensorboard]"' in line


def test_disk_full_is_one_line(tmp_path, tiny_bert, tiny_data, capsys, monkeypatch):
    import lit_al.atomic

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lit_al.atomic.os, "fsync", full)
    rc, line = _error(["fit", "--config", str(_config(tmp_path, tiny_bert, tiny_data))], capsys)
    assert rc == 1 and line.startswith("lit_al: error:") and "No space left on device (errno ENOSPC)" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_permission_denied_is_one_line(tmp_path, tiny_bert, tiny_data, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    rc, line = _error(["fit", "--config", str(_config(tmp_path, tiny_bert, tiny_data, run_dir=locked / "run"))], capsys)
    assert rc != 0 and "permission denied" in line


# ------------------------------------------------------------------ overwrite


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, tiny_bert, tiny_data, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    config = _config(tmp_path, tiny_bert, tiny_data, run_dir=folder)
    rc, line = _error(["fit", "--config", str(config), "--overwrite", "true"], capsys)
    assert rc == 1 and "is not a lit_al run" in line and "refusing to delete it" in line
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]


def test_overwrite_deletes_only_what_lit_al_wrote(tmp_path, tiny_bert, tiny_data, capsys):
    run_dir = tmp_path / "run"
    config = _config(tmp_path, tiny_bert, tiny_data, run_dir=run_dir)
    assert main(["fit", "--config", str(config)]) == 0
    (run_dir / "notes.txt").write_text("mine")
    (run_dir / ".state.json.abc123.tmp").write_text("left by a kill")
    assert main(["fit", "--config", str(config), "--overwrite", "true", "--model.lr", "2e-3"]) == 0
    assert (run_dir / "notes.txt").read_text() == "mine"
    assert not (run_dir / ".state.json.abc123.tmp").exists()
    assert "lr: 0.002" in (run_dir / "config.yaml").read_text()


# --------------------------------------------------------------------- resume


def test_resume_recognises_its_run_moved_renamed_or_redisplayed(tmp_path, tiny_bert, tiny_data, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    config = _config(tmp_path, tiny_bert, tiny_data, run_dir=run_dir)
    assert main(["fit", "--config", str(config)]) == 0
    final = json.loads((run_dir / "state.json").read_text())
    moved = tmp_path / "moved"
    shutil.copytree(run_dir, moved)
    monkeypatch.chdir(tmp_path)
    for argv in (["--resume", "run/"], ["--resume", "./run"], ["--resume", str(moved)],
                 ["--resume", "run", "--trainer.enable_progress_bar", "true", "--trainer.enable_model_summary", "true"],
                 ["--config", str(config), "--trainer.enable_progress_bar", "true"]):
        assert main(["fit", *argv]) == 0, argv
    assert json.loads((moved / "state.json").read_text()) == final
    rc, line = _error(["fit", "--config", str(config), "--model.lr", "3e-5"], capsys)
    assert rc == 1 and "model.lr: 0.001 -> 3e-05" in line and f"lit_al fit --resume {run_dir}" in line
    assert "--overwrite" not in line


def test_a_failed_first_attempt_does_not_block_the_corrected_command(tmp_path, tiny_bert, tiny_data, monkeypatch, capsys):
    from lit_al.loop import ActiveLoop

    def crash(self, state, round_index):
        raise RuntimeError("out of memory in round 0")

    config = _config(tmp_path, tiny_bert, tiny_data)
    with monkeypatch.context() as patch:
        patch.setattr(ActiveLoop, "run_round", crash)
        with pytest.raises(RuntimeError):
            main(["fit", "--config", str(config), "--data.batch_size", "64"])
    assert (tmp_path / "run" / "config.yaml").exists()  # the first attempt got as far as writing its run
    assert main(["fit", "--config", str(config), "--data.batch_size", "4"]) == 0
    assert "batch_size: 4" in (tmp_path / "run" / "config.yaml").read_text()


def test_extending_a_finished_run_equals_running_longer(tmp_path, tiny_bert, tiny_data):
    short = tmp_path / "short"
    assert main(["fit", "--config", str(_config(tmp_path, tiny_bert, tiny_data, run_dir=short))]) == 0
    assert main(["fit", "--resume", str(short), "--loop.rounds", "2"]) == 0
    full = tmp_path / "full"
    assert main(["fit", "--config", str(_config(tmp_path, tiny_bert, tiny_data, run_dir=full)), "--loop.rounds", "2"]) == 0
    a, b = (json.loads((d / "state.json").read_text()) for d in (short, full))
    assert a == b and a["finished"] and a["completed_rounds"] == 3
    pd.testing.assert_frame_equal(
        pd.read_csv(short / "metrics.csv").filter(regex="^test_(?!seconds)"), pd.read_csv(full / "metrics.csv").filter(regex="^test_(?!seconds)"))


def test_run_files_respect_the_umask(tmp_path, tiny_bert, tiny_data):
    old = os.umask(0o022)
    try:
        run_dir = tmp_path / "run"
        assert main(["fit", "--config", str(_config(tmp_path, tiny_bert, tiny_data, run_dir=run_dir))]) == 0
    finally:
        os.umask(old)
    for name in ("state.json", "config.yaml", "metrics.csv"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o644, name


def test_budget_warnings(tmp_path, tiny_bert, tiny_data, caplog):
    config = _config(tmp_path, tiny_bert, tiny_data, data__initial={"scenario": "random", "n": 500},
                     loop={"query_size": 10, "rounds": 1, "max_labels": 50})
    assert main(["fit", "--config", str(config)]) == 0
    assert "data.initial.n is 500 but the pool has 80 examples; the initial set has 80" in caplog.text
    assert "loop.max_labels is 50 but the initial set already has 80 labels; no round will query" in caplog.text


# ------------------------------------------------------------------- commands


def _python(*args, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300, **kwargs)


def test_top_level_help_and_version_do_not_build_parsers():
    probe = ("import sys; from lit_al.cli import main; code = main(sys.argv[1:]); "
             "assert 'lightning' not in sys.modules and 'torch' not in sys.modules; sys.exit(code)")
    help_ = _python("-c", probe, "--help")
    assert help_.returncode == 0, help_.stderr
    assert "fit" in help_.stdout and "experiment" in help_.stdout and "report" in help_.stdout
    version = _python("-c", probe, "--version")
    assert version.returncode == 0 and version.stdout.strip() == "lit_al 0.1.0"


def test_the_first_line_of_an_error_is_the_error(tmp_path):
    result = _python("-m", "lit_al.cli", "fit", "-c", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("lit_al: error:"), result.stderr


def test_builtin_demo_config_ships_in_the_package(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", "builtin:demo.yaml", "--print_config"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "builtin:trec/train.csv" in out and "run_dir: runs/demo" in out
    assert (ROOT / "configs" / "demo.yaml").resolve() == (ROOT / "lit_al" / "configs" / "demo.yaml").resolve()


# -------------------------------------------------------------------- loggers


def test_one_logger_version_per_run_with_a_learning_curve(tmp_path, tiny_bert, tiny_data):
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=tiny_data, run_dir=tmp_path / "run", rounds=2)
    logs = tmp_path / "logs"
    argv = ["fit", "--config", str(config), "--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", str(logs)]
    assert main(argv) == 0
    versions = sorted(p.name for p in (logs / "lightning_logs").iterdir())
    assert versions == ["version_0"]  # one for the run: not one per Trainer, none for prediction
    frame = pd.read_csv(logs / "lightning_logs" / "version_0" / "metrics.csv")
    curve = frame[frame["test_accuracy"].notna()]
    assert curve["step"].tolist() == [12, 22, 32] and curve["round"].tolist() == [0, 1, 2]
    for k in range(3):  # each round's fit curve under its own prefix
        assert frame[f"round_{k:03d}-val_loss"].notna().sum() == 2  # max_epochs 2
    assert not (tmp_path / "run" / "lightning_logs").exists()


def test_overwrite_removes_the_last_model_and_stop_set_predictions_too(tmp_path):
    from lit_al.model import RUN_MODEL_DIR
    from lit_al.rundir import remove_run
    from lit_al.stopping import STOPPING_DIR

    run = tmp_path / "run"
    for folder in (RUN_MODEL_DIR, STOPPING_DIR, "rounds"):
        (run / folder).mkdir(parents=True)
        (run / folder / "x").write_text("old")
    (run / "state.json").write_text(json.dumps({"n_pool": 3, "records": [], "completed_rounds": 1}))
    (run / "notes.txt").write_text("mine")
    remove_run(run)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]  # a new run never sees the old model


# ------------------------------------------------------------------ setup


def test_chromium_install_shows_why_apt_get_failed(tmp_path):
    """scripts/setup.sh's chromium step (scripts/install_chromium.sh): apt-get's own last lines, not just 'failed'."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mktemp", "tail", "sed", "rm", "id", "env"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "apt-get").write_text("#!/bin/sh\necho 'Reading package lists...'\n"
                                     "echo 'E: Unable to locate package chromium' >&2\nexit 100\n")
    (bin_dir / "sudo").write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec env "$@"\n')
    for name in ("apt-get", "sudo"):
        (bin_dir / name).chmod(0o755)
    done = subprocess.run([shutil.which("bash"), str(ROOT / "scripts" / "install_chromium.sh")], capture_output=True,
                          text=True, env={"PATH": str(bin_dir)}, timeout=60)
    assert done.returncode == 0  # best effort: setup goes on
    assert "chromium not installed (apt-get failed; the browser tests will skip). apt-get said:" in done.stderr
    assert "    E: Unable to locate package chromium" in done.stderr
