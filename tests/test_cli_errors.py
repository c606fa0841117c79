"""Bad input: one clear line naming the file, row or option; non-zero exit; no traceback; nothing written."""

from __future__ import annotations

import json

import pytest

from lit_al.cli import main
from tiny import make_rows, write_config, write_csv, write_dataset


@pytest.fixture
def setup(tmp_path, tiny_bert):
    data = write_dataset(tmp_path / "data")
    run_dir = tmp_path / "run"
    return tmp_path, data, run_dir, tiny_bert


def _fails(argv, capsys, pattern, code=None):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc != 0 and (code is None or rc == code)
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("lit_al: error:") and pattern in last, err
    return last


def _rewrite_train(data, mutate):
    rows = make_rows(80, seed=1, prefix="train")
    mutate(rows)
    write_csv(data / "train.csv", rows)


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda r: r.__setitem__(9, {**r[9], "text": ""}), "train.csv: empty text"),
        (lambda r: r.__setitem__(4, {**r[4], "label": "weather"}), "train.csv: label 'weather' is not in the label schema"),
        (lambda r: r.__setitem__(6, {**r[6], "id": r[1]["id"]}), "train.csv: duplicate id 'train-1'"),
    ],
    ids=["empty_text", "unknown_label", "duplicate_id"],
)
def test_bad_rows(setup, capsys, mutate, pattern):
    tmp_path, data, run_dir, bert = setup
    _rewrite_train(data, mutate)
    config = write_config(tmp_path / "c.yaml", model=bert, data=data, run_dir=run_dir)
    _fails(["fit", "--config", str(config)], capsys, pattern, code=1)
    assert not run_dir.exists()


def test_missing_file_and_column(setup, capsys):
    tmp_path, data, run_dir, bert = setup
    config = write_config(tmp_path / "c.yaml", model=bert, data=data, run_dir=run_dir)
    _fails(["fit", "--config", str(config), "--data.test", str(tmp_path / "missing.csv")], capsys, "missing.csv: file not found")
    _fails(["fit", "--config", str(config), "--data.text_column", "sentence"], capsys, "missing column 'sentence'")
    assert not run_dir.exists()


def test_unknown_config_key(setup, capsys):
    tmp_path, data, run_dir, bert = setup
    config = write_config(tmp_path / "c.yaml", model=bert, data=data, run_dir=run_dir)
    payload = json.loads(config.read_text())
    payload["model"]["learning_rate"] = 0.1
    config.write_text(json.dumps(payload))
    _fails(["fit", "--config", str(config)], capsys, "learning_rate", code=2)
    assert not run_dir.exists()


def test_bad_options(setup, capsys):
    tmp_path, data, run_dir, bert = setup
    config = write_config(tmp_path / "c.yaml", model=bert, data=data, run_dir=run_dir)
    _fails(["fit", "--config", str(config), "--loop.query_size", "0"], capsys, "loop.query_size must be positive")
    _fails(["fit", "--config", str(config), "--strategy", "nonsense"], capsys, "unknown strategy 'nonsense'")
    _fails(["fit", "--config", str(config), "--model.model_name_or_path", str(tmp_path / "no-model")], capsys, "no-model")
    assert not run_dir.exists()


def test_keyword_query_matching_nothing(setup, capsys):
    tmp_path, data, run_dir, bert = setup
    config = write_config(tmp_path / "c.yaml", model=bert, data=data, run_dir=run_dir,
                          initial={"scenario": "keyword_query", "n": 5, "weak_negatives": 5, "query": "zebra"},
                          extra_data={"target_label": "sport"})
    _fails(["fit", "--config", str(config)], capsys, "'zebra' matches no text in the pool")
    assert not run_dir.exists()


def test_print_config_shows_resolved_options(setup, capsys):
    tmp_path, data, run_dir, bert = setup
    config = write_config(tmp_path / "c.yaml", model=bert, data=data, run_dir=run_dir)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--model.lr", "3e-5", "--print_config"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "lr: 3.0e-05" in out and "query_size: 10" in out and "max_epochs: 2" in out
