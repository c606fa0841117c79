"""Every registered strategy runs one real round through the CLI on the tiny model (model-side outputs included)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lit_al.cli import main
from lit_al.strategies import registered_strategies
from tiny import write_config, write_dataset

#: Options some strategies need (or variants worth running through the model side).
CASES: dict[str, dict] = {name: {} for name in registered_strategies()}
CASES.update({
    "egl[full]": {"name": "egl", "variant": "full"},
    "egl[word]": {"name": "egl", "variant": "word"},
    "kmeans[pretrained]": {"name": "kmeans", "encoder": "pretrained"},
    "probcover[finetuned]": {"name": "probcover", "encoder": "finetuned"},
    "mc_dropout[head]": {"name": "mc_dropout", "mc_scope": "head", "mc_passes": 3},
    "mc_dropout": {"name": "mc_dropout", "mc_passes": 3},
    "bald": {"name": "bald", "mc_passes": 3},
    "batch_bald": {"name": "batch_bald", "mc_passes": 4, "num_samples": 50},
    "beal": {"name": "beal", "mc_passes": 3},
})


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_bert, tiny_mlm):
    root = tmp_path_factory.mktemp("e2e")
    return {
        "bert": tiny_bert,
        "mlm": tiny_mlm,
        "single": write_dataset(root / "single", n_pool=40, n_dev=12, n_test=12),
        "multi": write_dataset(root / "multi", multi_label=True, n_pool=40, n_dev=12, n_test=12),
    }


@pytest.mark.parametrize("multi_label", [False, True], ids=["single", "multi"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_one_round(case, multi_label, env, tmp_path):
    spec = dict(CASES[case]) or {"name": case}
    spec.setdefault("name", case)
    cls = registered_strategies()[spec["name"]]
    if multi_label and not cls.supports_multi_label:
        pytest.skip(f"{case} refuses multi-label")
    if spec["name"] == "alps":
        spec["mlm_model"] = str(env["mlm"])
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=env["bert"], data=env["multi" if multi_label else "single"],
                          run_dir=run_dir, multi_label=multi_label, strategy=spec, rounds=1, query_size=6,
                          initial={"scenario": "random", "n": 9})
    payload = json.loads(config.read_text())
    payload["trainer"]["max_epochs"] = 1
    config.write_text(json.dumps(payload))
    assert main(["fit", "--config", str(config)]) == 0
    selected = pd.read_csv(run_dir / "rounds" / "round_000" / "selected.csv")
    assert len(selected) == 6 and selected["pool_index"].is_unique
    state = json.loads((run_dir / "state.json").read_text())
    assert sum(r["round"] == 0 for r in state["records"]) == 6  # the answers to batch round_000
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert (metrics["query_strategy"].dropna() == spec["name"]).all()


def test_cold_start_ft_bert_km_falls_back_to_bert_km(env, tmp_path, caplog):
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=env["bert"], data=env["single"], run_dir=run_dir,
                          strategy={"name": "kmeans", "encoder": "finetuned"}, rounds=1, query_size=6,
                          initial={"scenario": "none"})
    assert main(["fit", "--config", str(config)]) == 0
    assert "cold start" in caplog.text and "kmeans" in caplog.text
    assert len(pd.read_csv(run_dir / "rounds" / "round_000" / "selected.csv")) == 6


@pytest.mark.parametrize("name", ["probcover", "typiclust"])
def test_cold_start_strategies_query_without_a_trained_model(name, env, tmp_path, caplog):
    """ProbCover and TypiClust read the pretrained encoder: a cold start queries with them, no fallback."""
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=env["bert"], data=env["single"], run_dir=run_dir,
                          strategy={"name": name}, rounds=1, query_size=6, initial={"scenario": "none"})
    assert main(["fit", "--config", str(config)]) == 0
    assert "needs a fine-tuned model" not in caplog.text  # no cold-start fallback
    assert len(pd.read_csv(run_dir / "rounds" / "round_000" / "selected.csv")) == 6


def test_probcover_delta_is_constant_across_rounds_and_a_resume(env, tmp_path, monkeypatch):
    """ProbCover's δ is chosen in the first round and kept in state.json; a resumed run reuses it."""
    import lit_al.strategies.cold_start as cold_start
    from lit_al.loop import ActiveLoop

    deltas: list[float] = []
    real_select = cold_start.ProbCover._select

    def recording_select(self, *args):
        selection = real_select(self, *args)
        deltas.append(selection.info["delta"])
        return selection

    monkeypatch.setattr(cold_start.ProbCover, "_select", recording_select)
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=env["bert"], data=env["single"], run_dir=run_dir,
                          strategy={"name": "probcover"}, rounds=3, query_size=6)
    real_run_round = ActiveLoop.run_round

    def stop_in_round_two(self, state, round_index):
        if round_index >= 2:
            raise KeyboardInterrupt
        return real_run_round(self, state, round_index)

    monkeypatch.setattr(ActiveLoop, "run_round", stop_in_round_two)
    with pytest.raises(KeyboardInterrupt):
        main(["fit", "--config", str(config)])
    monkeypatch.setattr(ActiveLoop, "run_round", real_run_round)
    assert main(["fit", "--config", str(config)]) == 0  # resumes at round 2
    assert len(deltas) == 3 and len(set(deltas)) == 1, deltas
    state = json.loads((run_dir / "state.json").read_text())
    assert state["strategy_records"] == {"probcover": {"delta": {"pretrained_embeddings": deltas[0]}}}
