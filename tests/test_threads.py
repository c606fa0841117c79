"""lit_al.threads: the deliberate torch thread count, shared by fit and the experiment runner."""

from __future__ import annotations

import pytest
import torch

from lit_al import threads
from lit_al.errors import ConfigError


@pytest.fixture
def restore(monkeypatch):
    before = torch.get_num_threads()
    for name in threads.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    torch.set_num_threads(before)


def test_default_follows_omp_num_threads_else_cpus_per_job(restore):
    restore.setattr(threads, "available_cpus", lambda: 8)
    assert threads.default_threads() == 8
    assert threads.default_threads(jobs=3) == 2
    assert threads.default_threads(jobs=16) == 1
    restore.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads(jobs=4) == 3
    restore.setenv("OMP_NUM_THREADS", "garbage")
    assert threads.default_threads() == 8


def test_available_cpus_is_within_the_affinity_mask():
    import os

    assert 1 <= threads.available_cpus() <= len(os.sched_getaffinity(0))


def test_set_threads_sets_torch_and_the_environment(restore):
    import os

    assert threads.set_threads(1) == 1
    assert torch.get_num_threads() == 1
    assert all(os.environ[name] == "1" for name in threads.THREAD_VARIABLES)
    restore.setenv("OMP_NUM_THREADS", "2")
    assert threads.set_threads(None) == 2 and torch.get_num_threads() == 2
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="threads must be a positive integer"):
            threads.set_threads(bad)


def test_fit_rejects_bad_threads_in_one_line(tmp_path, tiny_bert, capsys, restore):
    from lit_al.cli import main
    from tiny import write_config, write_dataset

    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=write_dataset(tmp_path / "data"), run_dir=tmp_path / "run")
    assert main(["fit", "--config", str(config), "--threads", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "lit_al: error: threads must be a positive integer or null (automatic), got 0"
    assert "Traceback" not in "\n".join(err) and not (tmp_path / "run").exists()
