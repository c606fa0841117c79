"""Stopping signals in a real run: logged every round, ``loop.stop_when`` ends the run, resume-safe."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lit_al.cli import main
from lit_al.loop import ActiveLoop
from tiny import write_config, write_dataset

SIGNALS = ["stop_kappa", "stop_kappa_mean", "stop_overall_uncertainty", "stop_max_uncertainty", "stop_expected_error"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "single")


def test_stop_when_ends_the_run_with_its_reason(tmp_path, tiny_bert, tiny_data, capsys):
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=tiny_data, run_dir=run_dir, rounds=4)
    # kappa >= -1 over a window of one comparison: fires at the first comparison, round 1
    assert main(["fit", "--config", str(config), "--loop.stop_when.stabilizing_predictions", "true",
                 "--loop.stop_when.kappa", "-1", "--loop.stop_when.window", "1", "--loop.stop_set_size", "50"]) == 0
    assert "stop: stabilizing_predictions" in capsys.readouterr().out
    metrics = pd.read_csv(run_dir / "metrics.csv", keep_default_na=False, na_values=[""])
    assert metrics["round"].tolist() == [0, 1]
    assert metrics["stop_reason"].fillna("").tolist() == ["", "stabilizing_predictions"]
    assert np.isnan(metrics["stop_kappa"][0]) and -1 <= metrics["stop_kappa"][1] <= 1
    for column in ("stop_overall_uncertainty", "stop_expected_error", "class_balance"):
        assert metrics[column].between(0, 1).all()
    # the scored pool's max uncertainty: round 1 stopped before scoring the pool
    assert 0 <= metrics["stop_max_uncertainty"][0] <= 1 and np.isnan(metrics["stop_max_uncertainty"][1])
    assert (metrics[["labels_sport", "labels_money", "labels_tech"]].sum(axis=1) == metrics["labeled"]).all()
    state = json.loads((run_dir / "state.json").read_text())
    assert state["finished"] and state["pending"] is None and state["completed_rounds"] == 2
    saved = [np.load(run_dir / "stopping" / f"round_{k:03d}.npy") for k in (0, 1)]
    assert all(p.shape == (50,) for p in saved)
    assert not (run_dir / "rounds" / "round_000" / "stop_set").exists()
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "FIRES (>= -1)" in out and "stopped by: stabilizing_predictions" in out
    assert "not computed (the round scored no pool probabilities" in out  # round 1 stopped before scoring


def test_max_uncertainty_is_taken_over_the_scored_pool_and_stops_before_selecting(tmp_path, tiny_bert, tiny_data):
    """Zhu et al. 2008's max-confidence: the most uncertain scored pool example, not a stop-set row."""
    from lit_al.analysis.stopping import normalized_uncertainty

    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=tiny_data, run_dir=run_dir, rounds=3)
    # every normalised entropy is <= 1: fires at round 0, once the pool is scored; a 3-row stop set
    assert main(["fit", "--config", str(config), "--loop.stop_when.max_uncertainty", "1.0",
                 "--loop.stop_set_size", "3", "--loop.keep_outputs", "true"]) == 0
    metrics = pd.read_csv(run_dir / "metrics.csv", keep_default_na=False, na_values=[""])
    assert metrics["round"].tolist() == [0] and metrics["stop_reason"].tolist() == ["max_uncertainty"]
    probs = np.load(run_dir / "rounds" / "round_000" / "outputs" / "probs.npy")
    scored = ~np.isnan(probs).any(axis=1)
    state = json.loads((run_dir / "state.json").read_text())
    labeled = {r["pool_index"] for r in state["records"]}
    assert scored.sum() == probs.shape[0] - len(labeled) > 3  # the whole unlabeled pool, not the stop set
    expected = normalized_uncertainty(probs[scored], multi_label=False).max()
    assert metrics["stop_max_uncertainty"][0] == pytest.approx(expected, abs=1e-6)
    assert state["finished"] and state["pending"] is None and state["completed_rounds"] == 1


def test_signals_of_a_resumed_run_equal_an_uninterrupted_one(tmp_path, tiny_bert, tiny_data, monkeypatch):
    full = tmp_path / "full"
    assert main(["fit", "--config", str(write_config(tmp_path / "a.yaml", model=tiny_bert, data=tiny_data,
                                                      run_dir=full, rounds=3))]) == 0
    parted = tmp_path / "parted"
    config = write_config(tmp_path / "b.yaml", model=tiny_bert, data=tiny_data, run_dir=parted, rounds=3)
    real_run_round = ActiveLoop.run_round

    def stop_after_two_rounds(self, state, round_index):
        if round_index >= 2:
            raise KeyboardInterrupt
        return real_run_round(self, state, round_index)

    monkeypatch.setattr(ActiveLoop, "run_round", stop_after_two_rounds)
    with pytest.raises(KeyboardInterrupt):
        main(["fit", "--config", str(config)])
    monkeypatch.setattr(ActiveLoop, "run_round", real_run_round)
    assert main(["fit", "--config", str(config)]) == 0
    a, b = pd.read_csv(full / "metrics.csv"), pd.read_csv(parted / "metrics.csv")
    assert a["stop_kappa"].notna().sum() == 3  # rounds 1..3 each compare with the round before
    pd.testing.assert_frame_equal(a[SIGNALS], b[SIGNALS])
    assert a["stop_kappa_mean"].notna().tolist() == [False, False, False, True]  # a window of 3 comparisons


def test_stop_set_size_zero_logs_only_the_class_balance(tmp_path, tiny_bert, tiny_data):
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=tiny_data, run_dir=run_dir, rounds=0)
    assert main(["fit", "--config", str(config), "--loop.stop_set_size", "0"]) == 0
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert "class_balance" in metrics and not set(SIGNALS) & set(metrics.columns)
    assert not (run_dir / "stopping").exists()
