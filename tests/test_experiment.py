"""``lit_al experiment`` and ``lit_al report``: grid expansion, shared round 0, skip/resume, the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lit_al.cli import main
from lit_al.errors import ConfigError
from lit_al.experiment import deep_merge, load_grid
from lit_al.round0 import SharedRound0
from tiny import write_config, write_dataset


def _grid(tmp_path: Path, base: dict | str, **extra) -> Path:
    grid = {"experiment_dir": str(tmp_path / "exp"), "base": base, "seeds": [0, 1],
            "strategies": ["random", {"name": "least_confidence", "label": "lc"}], **extra}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid), encoding="utf-8")
    return path


BASE = {"seed": 0, "run_dir": "unused", "data": {"train": "t.csv", "initial": {"scenario": "random", "n": 5}},
        "loop": {"query_size": 3, "rounds": 2}}


# ------------------------------------------------------------------ grid expansion
def test_cells_round0_and_reference_first_then_seed_major(tmp_path):
    grid = load_grid(_grid(tmp_path, BASE))
    cells = grid.cells()
    assert [c.name for c in cells] == [
        "default/round0/seed_0", "default/round0/seed_1", "default/all_data/seed_0",
        "default/random/seed_0", "default/lc/seed_0", "default/random/seed_1", "default/lc/seed_1",
    ]
    by_name = {c.name: c for c in cells}
    lc = by_name["default/lc/seed_1"]
    assert lc.depends_on == ("default/round0/seed_1",)
    assert lc.config["seed"] == 1 and lc.config["strategy"] == {"name": "least_confidence"}
    assert lc.config["loop"] == {"query_size": 3, "rounds": 2, "round0_model_dir": str(tmp_path / "exp/default/round0/seed_1/model")}
    assert lc.config["run_dir"] == str(tmp_path / "exp/default/lc/seed_1")
    round0 = by_name["default/round0/seed_1"].config
    assert round0["loop"]["rounds"] == 0 and round0["strategy"] == "random"
    reference = by_name["default/all_data/seed_0"].config
    assert reference["data"]["initial"] == {"scenario": "all", "n": 5} and reference["loop"]["rounds"] == 0
    assert BASE["data"]["initial"] == {"scenario": "random", "n": 5}  # the base is not mutated


def test_cold_start_scenario_has_no_round0_cell(tmp_path):
    grid = load_grid(_grid(tmp_path, BASE, reference=False,
                           scenarios={"cold": {"data": {"initial": {"scenario": "none"}}}, "warm": {}}))
    names = [c.name for c in grid.cells()]
    assert "cold/round0/seed_0" not in names and "warm/round0/seed_0" in names
    cold = next(c for c in grid.cells() if c.name == "cold/lc/seed_0")
    assert cold.depends_on == () and cold.config["loop"]["round0_model_dir"] is None


@pytest.mark.parametrize("change, message", [
    ({"bogus": 1}, "unknown grid option"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"seeds": [1, 1]}, "duplicates"),
    ({"strategies": ["random", "random"]}, "appears twice"),
    ({"strategies": ["round0"]}, "reserved"),
    ({"strategies": [{"options": 1}]}, "a name or a mapping with 'name'"),
    ({"scenarios": {"a/b": {}}}, "names a directory"),
    ({"base": "missing.yaml"}, "base config missing.yaml not found"),
])
def test_bad_grids_are_refused_with_the_option_named(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        change = dict(change)
        load_grid(_grid(tmp_path, change.pop("base", BASE), **change))


def test_deep_merge_replaces_leaves_and_merges_mappings():
    merged = deep_merge({"a": {"b": 1, "c": [1]}, "d": 2}, {"a": {"c": [2], "e": 3}, "d": {"x": 1}})
    assert merged == {"a": {"b": 1, "c": [2], "e": 3}, "d": {"x": 1}}


def test_shared_round0_refuses_a_model_of_another_configuration(tmp_path):
    import torch

    model = torch.nn.Linear(2, 2)
    SharedRound0(tmp_path, {"config": "a", "seed": 0, "labeled_ids": ["x"]}).save(model, {"fit_seconds": 1.0, "test_accuracy": 0.5, "round": 0})
    fresh = torch.nn.Linear(2, 2)
    assert SharedRound0(tmp_path, {"config": "a", "seed": 0, "labeled_ids": ["x"]}).load(fresh) == {"fit_seconds": 1.0, "test_accuracy": 0.5}
    assert torch.equal(fresh.weight, model.weight)
    with pytest.raises(ConfigError, match="trained from another initial set or configuration"):
        SharedRound0(tmp_path, {"config": "a", "seed": 0, "labeled_ids": ["y"]}).load(fresh)
    assert SharedRound0(tmp_path / "empty", {}).load(fresh) is None


# ------------------------------------------------------------------ a real tiny experiment
@pytest.fixture(scope="module")
def experiment(tmp_path_factory, tiny_bert):
    """2 strategies x 2 seeds x 2 rounds on the tiny BERT, run through ``lit_al experiment --jobs 2``."""
    root = tmp_path_factory.mktemp("experiment")
    data = write_dataset(root / "data", n_pool=60)
    base = json.loads(write_config(root / "base.yaml", model=tiny_bert, data=data, run_dir=root / "unused",
                                   rounds=2, query_size=8).read_text())
    grid = _grid(root, base)
    assert main(["experiment", "--config", str(grid), "--jobs", "2"]) == 0
    return root / "exp", grid


def _metrics(exp: Path, strategy: str, seed: int) -> pd.DataFrame:
    return pd.read_csv(exp / "default" / strategy / f"seed_{seed}" / "metrics.csv")


def _records(exp: Path, strategy: str, seed: int) -> list[dict]:
    return json.loads((exp / "default" / strategy / f"seed_{seed}" / "state.json").read_text())["records"]


def test_strategies_of_a_seed_share_the_initial_set_and_the_round0_model(experiment):
    exp, _ = experiment
    for seed in (0, 1):
        initial = {s: sorted(r["id"] for r in _records(exp, s, seed) if r["round"] == -1) for s in ("random", "lc")}
        assert initial["random"] == initial["lc"] and len(initial["lc"]) == 12
        round0 = [_metrics(exp, s, seed).iloc[0] for s in ("random", "lc")]
        shared = _metrics(exp, "round0", seed).iloc[0]
        for row in round0:
            assert row["test_accuracy"] == shared["test_accuracy"] and row["fit_seconds"] == shared["fit_seconds"]
        log = (exp / "logs" / f"default__lc__seed_{seed}.log").read_text()
        assert "loaded the shared model" in log
        assert _metrics(exp, "lc", seed)["labeled"].tolist() == [12, 20, 28]
    seeds = [sorted(r["id"] for r in _records(exp, "lc", s) if r["round"] == -1) for s in (0, 1)]
    assert seeds[0] != seeds[1]
    reference = _metrics(exp, "all_data", 0)
    assert reference["labeled"].tolist() == [60] and (exp / "default/all_data/seed_0/model/model.pt").exists()


def test_rerun_skips_finished_cells_and_reruns_a_lost_one_identically(experiment, capsys):
    exp, grid = experiment
    before = _metrics(exp, "lc", 1)
    shutil.rmtree(exp / "default" / "lc" / "seed_1")
    capsys.readouterr()
    assert main(["experiment", "--config", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "skipping 6 finished cell(s)" in out
    assert "start default/lc/seed_1 (1/1)" in out and out.count("start ") == 1
    after = _metrics(exp, "lc", 1)
    pd.testing.assert_frame_equal(before.drop(columns=[c for c in before if c.endswith("_seconds")]),
                                  after.drop(columns=[c for c in after if c.endswith("_seconds")]))


def test_interrupted_cell_resumes_from_its_last_round(experiment, capsys):
    exp, grid = experiment
    state_path = exp / "default" / "random" / "seed_0" / "state.json"
    state = json.loads(state_path.read_text())
    state["finished"], state["completed_rounds"] = False, 2  # as if killed during its last round
    state["records"] = [r for r in state["records"] if r["round"] < 2]
    state_path.write_text(json.dumps(state))
    capsys.readouterr()
    assert main(["experiment", "--config", str(grid)]) == 0
    assert "start default/random/seed_0 (1/1)" in capsys.readouterr().out
    log = (exp / "logs" / "default__random__seed_0.log").read_text()
    assert "resuming" in log
    assert json.loads(state_path.read_text())["finished"]


def test_report_writes_every_section_figure_and_table(experiment, tmp_path):
    exp, _ = experiment
    out = tmp_path / "report"
    assert main(["report", str(exp), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    for heading in ("### Learning curves", "### Area under the learning curve", "### Labels needed to reach",
                    "### Significance", "Pairwise, Bonferroni-corrected", "### Batch analysis",
                    "D(B) paper (NN1)", "Rep(B) IBM code", "Overlap of the first batches", "Gd (token Jaccard",
                    "### Runtime per round", "All-data reference"):
        assert heading in text, heading
    for figure in ("default_curves_0.png", "default_runtime.png", "default_gd_gu.png"):
        assert (out / "figures" / figure).stat().st_size > 1000
        assert f"figures/{figure}" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["headline_metric"] == "test_macro_f1" or summary["headline_metric"] == "test_accuracy"
    assert {r["strategy"] for r in summary["wilcoxon_vs_random"]} == {"lc"}
    assert summary["wilcoxon_vs_random"][0]["pairs"] == 4  # 2 seeds x rounds 1..2
    assert len(summary["batch_analysis"]["first_batch"]) == 4 and len(summary["batch_analysis"]["overlap"]) == 2
    assert set(pd.read_csv(out / "runtime.csv")["round"]) == {0, 1, 2}
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["strategy"]) == {"random", "lc"} and curves["labeled"].max() == 28
    runs = pd.read_csv(out / "runs.csv")
    row = runs[(runs["strategy"] == "lc") & (runs["seed"] == 0) & (runs["round"] == 2)]
    assert len(row) == 1
    # The ALC in the summary is the trapezoid of the per-seed curves, averaged.
    lc = runs[runs["strategy"] == "lc"].pivot(index="seed", columns="labeled", values=summary["headline_metric"])
    x = lc.columns.to_numpy(dtype=float)
    expected = np.mean([np.trapezoid(r, x) / (x[-1] - x[0]) for r in lc.to_numpy()])
    alc = next(r for r in summary["alc"] if r["strategy"] == "lc")
    assert alc["alc_mean"] == pytest.approx(expected)


def test_report_summary_names_the_experiment(experiment, tmp_path):
    """``summary.json``'s ``experiment`` is the experiment's name (it was the last figure's file name once)."""
    exp, _ = experiment
    out = tmp_path / "report"
    assert main(["report", str(exp), "--out", str(out), "--batch_analysis", "false"]) == 0
    assert json.loads((out / "summary.json").read_text())["experiment"] == exp.name == "exp"
    assert (out / "report.md").read_text().startswith("# Experiment report: exp\n")


def test_report_of_a_directory_without_experiment_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "no experiment.json" in capsys.readouterr().err


def test_experiment_with_a_bad_cell_config_runs_nothing(tmp_path, capsys):
    grid = _grid(tmp_path, {**BASE, "trainer": {"max_epochz": 1}})
    assert main(["experiment", "--config", str(grid)]) == 1
    err = capsys.readouterr().err
    assert "cell default/round0/seed_0" in err and "max_epochz" in err
    assert not (tmp_path / "exp").exists()


def test_round0_fingerprint_ignores_what_does_not_change_the_round0_model(tmp_path):
    from lit_al.config import fit_parser, round0_fingerprint

    parser = fit_parser()
    base = {**BASE, "trainer": {"max_epochs": 2}}

    def key(**changes):
        config = deep_merge(base, changes)
        return round0_fingerprint(parser.parse_object(config))

    same = key()
    assert key(strategy="margin", run_dir="elsewhere", seed=7, loop={"rounds": 9, "query_size": 1}) == same
    assert key(trainer={"enable_progress_bar": False, "enable_model_summary": True}) == same
    assert key(trainer={"max_epochs": 3}) != same
    assert key(model={"lr": 1e-3}) != same
    assert key(data={"initial": {"n": 6}}) != same
    assert key(loop={"monitor": "val_accuracy"}) != same
    # an option added later, at its default, leaves the fingerprint of models saved before it as it was
    assert '"drop_empty_texts"' not in same and key(data={"drop_empty_texts": True}) != same


# ------------------------------------------------------------------ pooled significance (IBM's grouping)
def _fake_experiment(root: Path, name: str, differences: dict[str, list[float]], seeds: tuple[int, int] = (0, 1),
                     all_data: float | None = None) -> Path:
    """An experiment directory with finished cells whose round ≥ 1 accuracies are random's + the differences.

    Two seeds, rounds 0..2: ``differences[s]`` lists (first seed round 1, round 2, second seed round 1, round 2).
    ``all_data``: the accuracy of each seed's all-data reference cell (none without).
    """
    exp = root / name
    cells = []

    def finished_cell(strategy: str, seed: int, kind: str, metrics: dict) -> None:
        run_dir = exp / "default" / strategy / f"seed_{seed}"
        run_dir.mkdir(parents=True)
        pd.DataFrame(metrics).to_csv(run_dir / "metrics.csv", index=False)
        (run_dir / "state.json").write_text(json.dumps({"finished": True}))
        cells.append({"name": f"default/{strategy}/seed_{seed}", "scenario": "default", "strategy": strategy,
                      "seed": seed, "kind": kind, "run_dir": f"default/{strategy}/seed_{seed}"})

    for strategy, diffs in {"random": [0.0] * 4, **differences}.items():
        for position, seed in enumerate(seeds):
            accuracy = [0.4] + [0.5 + 0.1 * position + 0.01 * r + diffs[2 * position + r - 1] for r in (1, 2)]
            finished_cell(strategy, seed, "strategy", {"round": [0, 1, 2], "labeled": [10, 20, 30], "test_accuracy": accuracy})
    if all_data is not None:
        for seed in seeds:
            finished_cell("all_data", seed, "reference", {"round": [0], "labeled": [100], "test_accuracy": [all_data]})
    (exp / "experiment.json").write_text(json.dumps({
        "grid": {}, "metric": None, "scenarios": ["default"], "strategies": ["random", *differences],
        "seeds": list(seeds), "cells": cells}))
    return exp


def test_pooled_report_pools_seed_round_pairs_across_experiments(tmp_path, capsys):
    # lc beats random on all 8 pooled pairs, by distinct margins: exact two-sided p = 2 / 2^8
    a = _fake_experiment(tmp_path, "a", {"lc": [0.01, 0.02, 0.03, 0.04], "margin": [0.01, -0.02, 0.03, -0.04]})
    b = _fake_experiment(tmp_path, "b", {"lc": [0.05, 0.06, 0.07, 0.08], "margin": [0.05, -0.06, 0.07, -0.08]})
    out = tmp_path / "pooled"
    assert main(["report", str(a), str(b), "--pool", "true", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pooled_scenarios"] == ["a/default", "b/default"]
    assert "pooled over `a/default`, `b/default`" in summary["significance_grouping"]
    lc = next(r for r in summary["wilcoxon_vs_random"] if r["strategy"] == "lc")
    assert lc["pairs"] == 8 and lc["seeds"] == 4 and lc["wins"] == 8 and lc["comparisons"] == 2
    assert lc["p_value"] == pytest.approx(2 / 2**8) and lc["p_bonferroni"] == pytest.approx(4 / 2**8)
    assert lc["mean_difference"] == pytest.approx(0.045)
    margin = next(r for r in summary["wilcoxon_vs_random"] if r["strategy"] == "margin")
    # signed ranks: + on ranks 1, 3, 5, 7 (sum 16), − on 2, 4, 6, 8 (sum 20): W = 16, exact p = 2·#{W ≤ 16}/2^8
    from itertools import product
    sums = [sum(r for r, s in zip(range(1, 9), signs) if s) for signs in product([0, 1], repeat=8)]
    assert margin["p_value"] == pytest.approx(2 * sum(w <= 16 for w in sums) / 2**8)
    assert {(r["a"], r["b"]) for r in summary["wilcoxon_pairwise"]} == {("random", "lc"), ("random", "margin"), ("lc", "margin")}
    text = (out / "report.md").read_text()
    assert "Grouping: pooled over `a/default`, `b/default`" in text and "| lc |" in text
    # each experiment alone: 4 pairs, p = 2 / 2^4, not significant after Bonferroni
    assert main(["report", str(a), "--out", str(tmp_path / "a_report"), "--batch_analysis", "false"]) == 0
    alone = json.loads((tmp_path / "a_report" / "summary.json").read_text())
    lc_alone = next(r for r in alone["wilcoxon_vs_random"] if r["strategy"] == "lc")
    assert lc_alone["pairs"] == 4 and lc_alone["p_value"] == pytest.approx(2 / 2**4) and not lc_alone["significant"]
    assert "Grouping: scenario `default` alone" in (tmp_path / "a_report" / "report.md").read_text()


def test_report_merges_the_seeds_of_a_grid_from_run_directories_and_report_folders(tmp_path, capsys):
    """Seeds run elsewhere (another machine, an earlier session whose run directories are gone) join one report."""
    lc_first, lc_second = [0.01, 0.02, 0.03, 0.04], [0.05, 0.06, 0.07, 0.08]
    first = _fake_experiment(tmp_path, "first", {"lc": lc_first}, seeds=(0, 1), all_data=0.9)
    second = _fake_experiment(tmp_path, "second", {"lc": lc_second}, seeds=(2, 3), all_data=0.7)
    archive = tmp_path / "first_report"
    assert main(["report", str(first), "--out", str(archive), "--batch_analysis", "false"]) == 0
    shutil.rmtree(first)  # only the report folder is left of the first two seeds

    merged = tmp_path / "merged"
    assert main(["report", str(archive), str(second), "--out", str(merged), "--batch_analysis", "false"]) == 0
    summary = json.loads((merged / "summary.json").read_text())
    assert summary["seeds"] == [0, 1, 2, 3] and summary["merged_from"] == [str(archive), str(second)]
    lc = next(r for r in summary["wilcoxon_vs_random"] if r["strategy"] == "lc")
    # lc beats random on all 8 (seed, round ≥ 1) pairs, by distinct margins: exact two-sided p = 2 / 2^8
    assert lc["pairs"] == 8 and lc["seeds"] == 4 and lc["wins"] == 8
    assert lc["p_value"] == pytest.approx(2 / 2**8)
    assert lc["mean_difference"] == pytest.approx(np.mean(lc_first + lc_second))
    # the all-data reference of every seed: 0.9 twice from the archive's references.csv, 0.7 twice from the run cells
    reach = next(r for r in summary["labels_to_reach"] if r["strategy"] == "lc")
    assert reach["all_data"] == pytest.approx(0.8)
    curves = pd.read_csv(merged / "curves.csv")
    assert set(curves["test_accuracy_count"]) == {4}
    assert "Merged from:" in (merged / "report.md").read_text()

    again = _fake_experiment(tmp_path, "again", {"lc": lc_second}, seeds=(1, 2))
    capsys.readouterr()
    assert main(["report", str(archive), str(again), "--out", str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err
    assert "default/lc/seed 1 is in both" in err or "default/random/seed 1 is in both" in err
    assert main(["report", str(archive), str(second)]) == 1
    assert "name it with --out" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 1
    assert "not a report folder" in capsys.readouterr().err


# ------------------------------------------------------------------ launchers
def test_submitit_launcher_runs_a_tiny_grid_with_the_round0_dependency(tmp_path, tiny_bert, capsys):
    """``--launcher slurm`` through submitit's local executor: round 0 first, then the strategy, then resume."""
    pytest.importorskip("submitit")
    data = write_dataset(tmp_path / "data", n_pool=30)
    base = json.loads(write_config(tmp_path / "base.yaml", model=tiny_bert, data=data, run_dir=tmp_path / "unused",
                                   rounds=1, query_size=5).read_text())
    base["trainer"]["max_epochs"] = 1
    grid = _grid(tmp_path, base, seeds=[0], strategies=["random"], reference=False)
    command = ["experiment", "--config", str(grid), "--launcher", "slurm", "--slurm.cluster", "local",
               "--slurm.gpus_per_cell", "0", "--slurm.cpus_per_cell", "1", "--slurm.timeout_min", "10"]
    capsys.readouterr()
    assert main(command) == 0
    out = capsys.readouterr().out
    assert out.index("done default/round0/seed_0") < out.index("start default/random/seed_0")
    exp = tmp_path / "exp"
    assert json.loads((exp / "default" / "random" / "seed_0" / "state.json").read_text())["finished"]
    shared, first = _metrics(exp, "round0", 0).iloc[0], _metrics(exp, "random", 0).iloc[0]
    assert first["test_accuracy"] == shared["test_accuracy"] and first["fit_seconds"] == shared["fit_seconds"]
    assert list((exp / "slurm").glob("*_log.out"))  # submitit's job files
    assert main(command) == 0
    assert "skipping 2 finished cell(s)" in capsys.readouterr().out


def test_local_launcher_places_one_cell_per_device(tmp_path):
    from lit_al.experiment.launchers import ProcessLauncher, make_launcher

    launcher = ProcessLauncher(jobs=5, devices=["2", "3"])
    assert launcher.slots == 2
    script = "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"
    import sys
    handles = [launcher.start(f"c{i}", [sys.executable, "-c", script], {}, tmp_path / f"c{i}.log") for i in range(2)]
    assert launcher.free == []
    while any(launcher.poll(h) is None for h in handles):
        pass
    assert sorted(launcher.free) == ["2", "3"]
    assert [(tmp_path / f"c{i}.log").read_text().strip() for i in range(2)] == ["2", "3"]
    with pytest.raises(ConfigError, match="--launcher must be"):
        make_launcher("kubernetes", tmp_path)
    with pytest.raises(ConfigError, match="gpus_per_cell"):
        make_launcher("slurm", tmp_path, devices=["0"])


def test_slurm_launcher_without_slurm_is_one_clear_line(tmp_path, capsys):
    pytest.importorskip("submitit")
    if shutil.which("srun"):
        pytest.skip("this machine has SLURM")
    grid = _grid(tmp_path, BASE, seeds=[0], strategies=["random"], reference=False)
    assert main(["experiment", "--config", str(grid), "--launcher", "slurm"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--launcher slurm" in err[0] and "--slurm.cluster local" in err[0]
