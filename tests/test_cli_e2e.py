"""End to end through the CLI: tiny model, tiny data, real Lightning loop."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from lit_al.cli import main
from lit_al.loop import ActiveLoop
from tiny import write_config, write_dataset


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "single")


@pytest.fixture(scope="module")
def tiny_multilabel(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data") / "multi", multi_label=True)


def _state(run_dir):
    return json.loads((run_dir / "state.json").read_text())


def test_two_rounds_write_the_run_directory(tmp_path, tiny_bert, tiny_data, capsys):
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=tiny_data, run_dir=run_dir)
    assert main(["fit", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "round   2" in out and "labeled     32" in out
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics["round"].tolist() == [0, 1, 2]
    assert metrics["labeled"].tolist() == [12, 22, 32]
    for column in ("test_accuracy", "test_macro_f1", "test_micro_f1", "fit_seconds", "test_seconds"):
        assert column in metrics and metrics[column].notna().all()
    assert metrics["predict_seconds"].notna().sum() == 2 and metrics["select_seconds"].notna().sum() == 2
    state = _state(run_dir)
    assert state["finished"] and state["completed_rounds"] == 3
    assert [sum(r["round"] == k for r in state["records"]) for k in (-1, 0, 1)] == [12, 10, 10]  # initial set, batches 0, 1
    assert {r["source"] for r in state["records"]} == {"seed", "oracle"}
    for k in range(2):
        selected = pd.read_csv(run_dir / "rounds" / f"round_{k:03d}" / "selected.csv")
        assert len(selected) == 10 and selected["score"].notna().all()
        assert selected["score"].is_monotonic_decreasing  # entropy, best first
    assert (run_dir / "config.yaml").exists()
    # Re-running a finished run does nothing new and keeps the state.
    assert main(["fit", "--config", str(config)]) == 0
    assert _state(run_dir) == state


def test_stop_and_resume_equals_uninterrupted(tmp_path, tiny_bert, tiny_data, monkeypatch):
    full = tmp_path / "full"
    assert main(["fit", "--config", str(write_config(tmp_path / "a.yaml", model=tiny_bert, data=tiny_data, run_dir=full))]) == 0

    parted = tmp_path / "parted"
    config = write_config(tmp_path / "b.yaml", model=tiny_bert, data=tiny_data, run_dir=parted)
    real_run_round = ActiveLoop.run_round
    calls = []

    def stop_after_first_round(self, state, round_index):
        if calls:
            raise KeyboardInterrupt  # the process is stopped between rounds
        calls.append(round_index)
        return real_run_round(self, state, round_index)

    monkeypatch.setattr(ActiveLoop, "run_round", stop_after_first_round)
    with pytest.raises(KeyboardInterrupt):
        main(["fit", "--config", str(config)])
    assert _state(parted)["completed_rounds"] == 1
    monkeypatch.setattr(ActiveLoop, "run_round", real_run_round)
    assert main(["fit", "--config", str(config)]) == 0

    assert _state(parted)["records"] == _state(full)["records"]
    a, b = pd.read_csv(full / "metrics.csv"), pd.read_csv(parted / "metrics.csv")
    assert a["labeled"].tolist() == b["labeled"].tolist()
    pd.testing.assert_series_equal(a["test_accuracy"], b["test_accuracy"])


def test_interrupted_round_resumes_from_checkpoint(tmp_path, tiny_bert, tiny_data):
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=tiny_data, run_dir=run_dir)
    assert main(["fit", "--config", str(config)]) == 0
    final = _state(run_dir)
    # Simulate a crash after round 1 was checkpointed: roll the state back to that checkpoint.
    rolled = dict(final, finished=False, completed_rounds=2,
                  records=[r for r in final["records"] if r["round"] < 2])
    (run_dir / "state.json").write_text(json.dumps(rolled))
    assert main(["fit", "--resume", str(run_dir)]) == 0
    assert _state(run_dir) == final
    # the same checkpoint as lit_al wrote it before one round numbering (version 1: an answer to batch r
    # was round r + 1, the initial set round 0): resumed in the new numbering, to the same end
    old = dict(rolled, version=1, records=[{**r, "round": r["round"] + 1} for r in rolled["records"]])
    (run_dir / "state.json").write_text(json.dumps(old))
    assert main(["fit", "--resume", str(run_dir)]) == 0
    assert _state(run_dir) == final


def test_multilabel_run(tmp_path, tiny_bert, tiny_multilabel):
    run_dir = tmp_path / "ml"
    config = write_config(tmp_path / "m.yaml", model=tiny_bert, data=tiny_multilabel, run_dir=run_dir, multi_label=True,
                          strategy="least_confidence", rounds=1)
    assert main(["fit", "--config", str(config)]) == 0
    metrics = pd.read_csv(run_dir / "metrics.csv")
    for column in ("test_micro_f1", "test_macro_f1", "test_subset_accuracy"):
        assert metrics[column].notna().all()
    assert any(len(r["labels"]) > 1 for r in _state(run_dir)["records"])
    assert all(isinstance(r["labels"], list) for r in _state(run_dir)["records"])


def test_cold_start_falls_back_to_random(tmp_path, tiny_bert, tiny_data, caplog):
    run_dir = tmp_path / "cold"
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=tiny_data, run_dir=run_dir,
                          initial={"scenario": "none"}, rounds=1)
    assert main(["fit", "--config", str(config)]) == 0
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics["round"].tolist() == [1] and metrics["labeled"].tolist() == [10]
    assert "cold start" in caplog.text


def test_a_run_killed_after_propose_resumes_at_commit(tmp_path, tiny_bert, tiny_data, monkeypatch):
    full = tmp_path / "full"
    assert main(["fit", "--config", str(write_config(tmp_path / "a.yaml", model=tiny_bert, data=tiny_data, run_dir=full))]) == 0

    parted = tmp_path / "parted"
    config = write_config(tmp_path / "b.yaml", model=tiny_bert, data=tiny_data, run_dir=parted)
    real_commit, real_train = ActiveLoop._commit, ActiveLoop._train

    def die_in_commit(self, state, pending):
        raise KeyboardInterrupt  # killed between propose and commit

    monkeypatch.setattr(ActiveLoop, "_commit", die_in_commit)
    with pytest.raises(KeyboardInterrupt):
        main(["fit", "--config", str(config)])
    state = _state(parted)
    assert state["completed_rounds"] == 0 and state["pending"]["round"] == 0 and len(state["pending"]["pool_indices"]) == 10
    assert pd.read_csv(parted / "metrics.csv")["round"].tolist() == [0]

    trained: list[int] = []

    def counting_train(self, state, round_index):
        trained.append(round_index)
        return real_train(self, state, round_index)

    monkeypatch.setattr(ActiveLoop, "_commit", real_commit)
    monkeypatch.setattr(ActiveLoop, "_train", counting_train)
    assert main(["fit", "--config", str(config)]) == 0
    assert trained == [1, 2]  # round 0 resumed at commit: not trained, scored or selected again
    assert _state(parted)["records"] == _state(full)["records"]
    pd.testing.assert_frame_equal(pd.read_csv(parted / "metrics.csv")[["round", "labeled", "test_accuracy"]],
                                  pd.read_csv(full / "metrics.csv")[["round", "labeled", "test_accuracy"]])


def test_a_run_keeps_its_last_model_as_safetensors(tmp_path, tiny_bert, tiny_data):
    from lit_al.errors import ConfigError
    from lit_al.model import load_run_model

    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=tiny_data, run_dir=run_dir, rounds=1)
    assert main(["fit", "--config", str(config)]) == 0
    model, meta = load_run_model(run_dir / "model")
    assert meta["round"] == 1 and meta["task"]["num_labels"] == model.num_labels
    assert not list((run_dir / "model").glob("*.pt")) and not list((run_dir / "model").glob("*.bin"))  # never pickle
    weights = run_dir / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ConfigError, match="does not match"):
        load_run_model(run_dir / "model")


def test_bf16_mixed_precision_and_token_capped_batches_run_a_round(tmp_path, tiny_bert, tiny_data):
    """Lightning's own precision plugin autocasts pool scoring too; the outputs are stored as float32."""
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=tiny_data, run_dir=run_dir, rounds=1,
                          strategy="margin", extra_data={"eval_batch_tokens": 40})
    assert main(["fit", "--config", str(config), "--trainer.precision", "bf16-mixed", "--loop.keep_outputs", "true"]) == 0
    state = _state(run_dir)
    assert state["finished"] and sum(r["round"] == -1 for r in state["records"]) == 12
    selected = pd.read_csv(run_dir / "rounds" / "round_000" / "selected.csv")
    assert len(selected) == 10 and selected["score"].between(0, 1).all()
    probs = np.load(run_dir / "rounds" / "round_000" / "outputs" / "probs.npy")
    assert probs.dtype == np.float32 and np.allclose(np.nansum(probs, axis=1)[~np.isnan(probs).any(axis=1)], 1, atol=1e-2)


def test_multilabel_round_starts_from_the_labeled_sets_prior(tmp_path, tiny_bert, tiny_multilabel):
    """A multi-label head starts at the prior (``model.output_bias: auto``): with learning rates too small to move
    them, the saved biases are the prior's log-odds."""
    from lit_al.model import load_run_model

    run_dir = tmp_path / "prior"
    config = write_config(tmp_path / "p.yaml", model=tiny_bert, data=tiny_multilabel, run_dir=run_dir, multi_label=True,
                          rounds=0)
    assert main(["fit", "--config", str(config), "--model.lr", "1e-12",
                 "--model.head_lr", "1e-12", "--trainer.max_epochs", "1"]) == 0
    model, _ = load_run_model(run_dir / "model")
    names = model.label_names
    labeled = [r["labels"] for r in _state(run_dir)["records"] if r.get("labels") is not None]
    counts = torch.tensor([[name in row for name in names] for row in labeled], dtype=torch.float64).sum(0)
    prior = (counts + 0.5) / (len(labeled) + 1.0)
    torch.testing.assert_close(torch.sigmoid(model.output_layer.bias.detach().double()), prior, atol=1e-6, rtol=1e-5)
