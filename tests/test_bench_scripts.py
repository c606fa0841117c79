"""The benchmark scripts drive lit_al through its public API: a smoke run of each lit_al side on tiny arrays.

The benchmarks themselves are not run here (they time things); this keeps their calls in step
with the library, so ``python scripts/bench_*.py`` works from a fresh clone.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str):
    sys.path.insert(0, str(SCRIPTS))  # the scripts import their shared helpers (bench_common) by name
    try:
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


@pytest.fixture(scope="module")
def peers_arrays(tmp_path_factory):
    bench = _script("bench_peers")
    directory = tmp_path_factory.mktemp("peers")
    bench._bench_selection().write_dataset(directory, 400, {"probs", "embeddings", "mc_probs"})
    return bench, bench._load(directory)


def test_bench_peers_lit_al_side_runs_every_case(peers_arrays):
    bench, arrays = peers_arrays
    for strategy, (variants, _) in bench.CASES.items():
        for label, (name, _) in variants.items():
            picked = np.asarray(bench._lit_al_call(label, strategy, arrays, 7)())
            expected = (0,) if name in bench.FLOORS else (7,)  # a floor times a building block and picks nothing
            assert picked.shape == expected and np.isin(picked, arrays["unlabeled"]).all(), (strategy, label)


@pytest.mark.parametrize("case", ["entropy", "coreset", "kmeans", "badge", "density_weighted", "representativeness"])
def test_bench_scale_child_runs_each_selection_case(tmp_path, case):
    bench = _script("bench_scale")
    bench.write_arrays(tmp_path, 3000)
    result = bench.child(case, tmp_path, recall_sample=50)
    assert result["seconds"] >= 0 and result["peak_rss_mib"] > 0
    if case != "representativeness":
        assert result["picked"] == bench.CASES[case][1]


def test_multilabel_head_probe_trains_every_setting_from_the_prior():
    """Every setting of the probe trains on tiny features; the prior setting starts at the labels' log-odds."""
    import torch

    probe = _script("multilabel_head_probe")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 8, generator=generator)
    y = (torch.rand(40, 5, generator=generator) < 0.2).float()
    for setting in probe.SETTINGS:
        head = probe.train_head(x, y, probe.Setting(setting.lr, setting.bias, 3 if setting.steps else None,
                                                    setting.pos_weight), hidden=4, seed=0)
        assert head(x).shape == (40, 5) and not head.training
    untrained = probe.train_head(x, y, probe.Setting(1e-3, "prior", 1), hidden=4, seed=0)
    prior = (y.sum(0) + 0.5) / 41.0
    assert torch.allclose(torch.sigmoid(untrained.out.bias), prior, atol=2e-3)  # one step of 1e-3 from the prior


def test_bench_annotator_reports_waits_and_the_paired_learning_curve(tmp_path):
    bench = _script("bench_annotator")
    args = bench.parse(["--seeds", "0", "1", "--batches", "2"])
    results = [
        bench.RunResult(0, "overlap", [0.2, 0.1], [30.0], {50: {"test_accuracy": 0.5, "test_macro_f1": 0.4},
                                                           75: {"test_accuracy": 0.7, "test_macro_f1": 0.6}},
                        {"1": {"round": 0, "labeled": 60, "answers": 10, "overlap": True}}),
        bench.RunResult(0, "sync", [80.0, 90.0], [20.0], {50: {"test_accuracy": 0.5, "test_macro_f1": 0.4},
                                                          75: {"test_accuracy": 0.6, "test_macro_f1": 0.5}}),
        bench.RunResult(1, "overlap", [0.3, 0.4], [25.0], {50: {"test_accuracy": 0.4, "test_macro_f1": 0.3}}),
        bench.RunResult(1, "sync", [70.0, 60.0], [20.0], {50: {"test_accuracy": 0.5, "test_macro_f1": 0.35}}),
    ]
    text = bench.report(results, args, "python scripts/bench_annotator.py")
    assert "| 0 | 1 | 0.1 | 90.0 |" in text and "| median wait (s) | 0.2 | 75.0 |" in text
    assert "| 50 | 0.5000 ± 0.0000 | 0.4500 ± 0.0707 | -0.0500 ± 0.0707 (n=2) |" in text
    assert "| 75 | 0.6000 | 0.7000 | 0.1000 (n=1) |" in text and "| 0 | 1 | 0 | 60 | 10 |" in text
    seeds = bench.write_seed_labels(tmp_path / "s.csv", {"a": "X", "b": "Y", "c": "X"}, 2, seed=0)
    assert len(seeds.read_text().splitlines()) == 3
