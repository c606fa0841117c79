"""The ``lit_al`` router: one module per verb, yes/no options given alone, ``builtin:`` names, entry points."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lit_al.cli import VERBS, main
from lit_al.cli.flags import with_bare_flags

ROOT = Path(__file__).resolve().parents[1]


def _python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)


def test_every_verb_is_a_module_with_a_parser_and_a_run():
    for name, verb in VERBS.items():
        module = importlib.import_module(f"lit_al.cli.{verb.module}")
        assert callable(module.parser) and callable(module.run), name


def test_top_level_help_and_version_load_neither_jsonargparse_nor_lightning():
    probe = ("import sys; from lit_al.cli import main; main(['--help']); main(['--version']); "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'jsonargparse', 'lightning', 'torch', 'pandas'}))")
    result = _python("-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("entry", [["-m", "lit_al"], ["-m", "lit_al.cli"]])
def test_python_dash_m_runs_the_command(entry):
    result = _python(*entry, "--version")
    assert result.returncode == 0 and result.stdout.strip() == "lit_al 0.1.0", result.stderr
    result = _python(*entry, "nope")
    assert result.returncode == 2 and "unknown command 'nope'" in result.stderr


def _printed_config(argv: list[str], capsys) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--data.train", "x.csv", *argv, "--print_config"])
    assert exit_info.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("argv, key, expected", [
    (["--loop.keep_outputs"], ("loop", "keep_outputs"), True),  # alone before another option
    (["--loop.keep_outputs", "true"], ("loop", "keep_outputs"), True),
    (["--loop.keep_outputs", "false"], ("loop", "keep_outputs"), False),
    (["--loop.repropose_skipped", "--seed", "3"], ("loop", "repropose_skipped"), True),
    (["--loop.stop_when.stabilizing_predictions"], ("loop", "stop_when", "stabilizing_predictions"), True),
    (["--trainer.benchmark"], ("trainer", "benchmark"), True),
    (["--data.multi_label"], ("data", "multi_label"), True),  # a key jsonargparse reads inside the data value
    (["--model.compile", "--data.drop_empty_texts"], ("model", "compile"), True),
    (["--model.compile", "--data.drop_empty_texts"], ("data", "drop_empty_texts"), True),
])
def test_a_nested_yes_no_key_alone_means_yes(argv, key, expected, capsys):
    config = _printed_config(argv, capsys)
    value = config
    for part in key:
        value = value.get("init_args", value)[part]  # model and data print as class_path and init_args
    assert value is expected


def test_a_yes_no_option_alone_before_the_positionals(tmp_path, tiny_bert, capsys):
    """``lit_al label --overwrite RUN FILE`` reads as ``lit_al label RUN FILE --overwrite``."""
    import csv

    from annotate_runs import make_run

    run_dir, gold = make_run(tmp_path, tiny_bert)
    with (run_dir / "rounds" / "round_000" / "to_label.csv").open(newline="", encoding="utf-8") as handle:
        first = next(csv.DictReader(handle))["id"]
    answers = tmp_path / "a.csv"
    answers.write_text(f"id,label\n{first},sport\n", encoding="utf-8")
    assert main(["label", str(run_dir), str(answers)]) == 0
    answers.write_text(f"id,label\n{first},tech\n", encoding="utf-8")
    assert main(["label", str(run_dir), str(answers)]) == 1  # a correction needs --overwrite
    assert main(["label", "--overwrite", str(run_dir), str(answers)]) == 0
    state = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
    assert state["records"][0]["labels"] == ["tech"]
    capsys.readouterr()
    for verb, argv in (("export", ["--overwrite", "RUN", "OUT"]), ("labelstudio", ["pull", "--overwrite", "RUN"])):
        parser = VERBS[verb].parser()
        cfg = parser.parse_args(with_bare_flags(parser, argv))
        assert (cfg.overwrite if verb == "export" else cfg.pull.overwrite) is True


def test_bare_flags_leave_values_and_positionals_after_a_double_dash():
    parser = VERBS["label"].parser()
    assert with_bare_flags(parser, ["--overwrite", "No", "R", "F"]) == ["--overwrite", "No", "R", "F"]
    assert with_bare_flags(parser, ["--no_overwrite", "R", "F"]) == ["--no_overwrite=true", "R", "F"]
    assert with_bare_flags(parser, ["R", "--", "--overwrite"]) == ["R", "--", "--overwrite"]
    assert with_bare_flags(parser, ["--annotator", "ann", "R", "F", "--overwrite"]) == ["--annotator", "ann", "R", "F", "--overwrite=true"]


def test_builtin_names_one_folder_per_kind_and_a_missing_config_lists_the_shipped(capsys):
    from lit_al import builtin
    from lit_al.data.readers import resolve_path
    from lit_al.errors import ConfigError

    assert resolve_path("builtin:trec/train.csv") == builtin.PACKAGE_ROOT / "datasets" / "trec" / "train.csv"
    assert resolve_path("builtin:trec/train.csv").is_file()
    assert builtin.config_path("builtin:demo.yaml").is_file()
    assert builtin.config_path("my.yaml") == Path("my.yaml")
    with pytest.raises(ConfigError, match=r"^builtin:nope\.yaml: no such shipped config; shipped: demo\.yaml$"):
        builtin.config_path("builtin:nope.yaml")
    assert main(["fit", "-c", "builtin:nope.yaml"]) == 2
    assert capsys.readouterr().err.strip() == \
        "lit_al: error: --config builtin:nope.yaml: no such shipped config; shipped: demo.yaml"


def test_a_session_reads_a_shipped_config_through_the_same_resolver():
    from lit_al import Session
    from lit_al.errors import ConfigError

    session = Session("builtin:demo.yaml", run_dir="unused")
    assert session.run_dir == Path("unused")
    with pytest.raises(ConfigError, match="no such shipped config"):
        Session("builtin:nope.yaml")


def test_a_verb_that_ends_well_destroys_the_process_group_and_one_that_fails_keeps_it(tmp_path):
    """Lightning leaves a DDP run's process group alive; a gloo group alive at interpreter shutdown can abort a rank
    that did all its work (exit status -6, seen on the two-node test). The router destroys it after a verb returns 0,
    and not after a failure (another rank may still be inside a collective)."""
    probe = f"""
import torch.distributed as dist
import lit_al.cli.status as status
from lit_al.cli import main
dist.init_process_group("gloo", init_method="file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
status.run = lambda parser, cfg: 1
print(main(["status", "{tmp_path}"]), dist.is_initialized())
status.run = lambda parser, cfg: 0
print(main(["status", "{tmp_path}"]), dist.is_initialized())
"""
    result = _python("-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "True", "0", "False"]
