"""What an import pulls in: strategies with NumPy alone, the top-level exports on first use, light verbs.

Each check runs in a fresh interpreter and reads ``sys.modules``: a module imported by an
earlier test of this session would otherwise hide a heavy import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "lightning", "transformers", "faiss")
ROOT = Path(__file__).resolve().parents[1]


def _loaded_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; return its JSON ``result`` and the heavy top-level packages loaded."""
    probe = (
        "import json, sys\n" + code + "\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(json.dumps({'result': globals().get('result'), 'heavy': heavy}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_strategies_import_build_and_select_with_numpy_alone():
    """A program with arrays from its own model needs neither torch nor FAISS to use lit_al's strategies."""
    found = _loaded_after(
        "import numpy as np\n"
        "import lit_al.strategies as s\n"
        "names = sorted(s.registered_strategies())\n"
        "probs = np.random.default_rng(0).dirichlet(np.ones(3), size=40)\n"
        "picked = s.get_strategy('entropy').select({'probs': probs}, np.arange(5), np.arange(5, 40), 4, seed=0)\n"
        "result = {'names': len(names), 'picked': picked.indices.tolist()}\n"
    )
    assert found["heavy"] == [], f"import lit_al.strategies (and an entropy selection) loaded {found['heavy']}"
    assert found["result"]["names"] > 20 and len(found["result"]["picked"]) == 4


def test_faiss_and_torch_load_when_a_strategy_that_needs_them_runs():
    found = _loaded_after(
        "import numpy as np\n"
        "from lit_al.strategies import get_strategy\n"
        "x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)\n"
        "strategy = get_strategy('coreset')\n"
        "before = 'faiss' in sys.modules\n"
        "strategy.select({'embeddings': x}, np.arange(3), np.arange(3, 30), 2, seed=0)\n"
        "result = {'before': before, 'after': 'faiss' in sys.modules}\n"
    )
    assert found["result"] == {"before": False, "after": True}
    assert "torch" not in found["heavy"]


def test_top_level_exports_load_on_first_use():
    found = _loaded_after(
        "import lit_al\n"
        "light = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning'})\n"
        "exported = sorted(lit_al.__all__)\n"
        "listed = all(name in dir(lit_al) for name in exported)\n"
        "from lit_al import ActiveDataModule, ActiveLoop, Session, TextClassifier\n"
        "from lit_al.data.module import ActiveDataModule as D\n"
        "from lit_al.loop import ActiveLoop as L\n"
        "from lit_al.model import TextClassifier as M\n"
        "from lit_al.session import Session as S\n"
        "same = (ActiveDataModule, ActiveLoop, Session, TextClassifier) == (D, L, S, M)\n"
        "result = {'light': light, 'exported': exported, 'listed': listed, 'same': same}\n"
    )
    result = found["result"]
    assert result["light"] == []  # import lit_al alone: neither torch nor Lightning
    assert {"ActiveDataModule", "ActiveLoop", "Session", "TextClassifier"} <= set(result["exported"])
    assert result["listed"] and result["same"]


def test_an_unknown_top_level_name_is_an_attribute_error():
    import lit_al

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        lit_al.Nope  # noqa: B018


def test_model_class_path_names_the_top_level_export(tmp_path, tiny_bert):
    """``--model.class_path lit_al.TextClassifier`` runs a round and is saved as given."""
    from lit_al.cli import main
    from tiny import write_config, write_dataset

    data = write_dataset(tmp_path / "data")
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "c.yaml", model=tiny_bert, data=data, run_dir=run_dir, rounds=1, query_size=4)
    assert main(["fit", "--config", str(config), "--model.class_path", "lit_al.TextClassifier",
                 "--data.class_path", "lit_al.ActiveDataModule"]) == 0
    saved = (run_dir / "config.yaml").read_text(encoding="utf-8")
    assert "class_path: lit_al.TextClassifier" in saved and "class_path: lit_al.ActiveDataModule" in saved
    assert json.loads((run_dir / "state.json").read_text())["finished"]


def test_label_and_status_load_no_model_library(tmp_path, tiny_bert):
    """``lit_al label RUN FILE`` and ``lit_al status RUN`` read files: no torch, Lightning, transformers, FAISS or SciPy."""
    import csv

    from annotate_runs import make_run

    run_dir, gold = make_run(tmp_path, tiny_bert)
    with (run_dir / "rounds" / "round_000" / "to_label.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["label"] = gold[row["id"]][0]
    answers = tmp_path / "answers.csv"
    with answers.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    too_heavy = [*HEAVY, "scipy"]
    for argv, also_not in ((["label", str(run_dir), str(answers)], []), (["status", str(run_dir)], ["pandas"])):
        found = _loaded_after(
            "from lit_al.cli import main\n"
            f"code = main({argv!r})\n"
            f"result = {{'code': code, 'loaded': sorted({{m.split('.')[0] for m in sys.modules}} & set({[*too_heavy, *also_not]!r}))}}\n"
        )
        assert found["result"] == {"code": 0, "loaded": []}, f"lit_al {argv[0]}: {found['result']}"
    state = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
    assert len(state["records"]) == len(rows)  # the answers were imported
    from lit_al.data.files import DataFiles
    from lit_al.session import load_run_data, load_run_files

    light, full = load_run_files(run_dir), load_run_data(run_dir)  # DataFiles alone reads what the data module reads
    assert type(light) is DataFiles and light.pool.ids == full.pool.ids and light.pool.texts == full.pool.texts
    assert light.schema == full.schema and light.label_separator == full.label_separator
