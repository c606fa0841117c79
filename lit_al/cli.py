"""The ``lit_al`` command line (jsonargparse, in the style of LightningCLI).

``lit_al fit --config configs/demo.yaml`` runs an active-learning simulation;
``lit_al experiment --config GRID.yaml`` runs a grid of them and
``lit_al report EXPERIMENT_DIR`` writes its tables and figures.
Every option can come from the YAML file or the command line
(``--model.lr 3e-5``, ``--data.batch_size 16``, ``--trainer.max_epochs 3``,
``--strategy margin``, ``--loop.query_size 25``); unknown keys are errors;
``--print_config`` prints the resolved configuration.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from .errors import ConfigError, LitAlError

log = logging.getLogger("lit_al")

MODEL_SKIP = {"num_labels", "multi_label", "label_names", "positive_index"}
#: Trainer defaults of lit_al (each round builds its own Trainer; the loop writes its own metrics).
TRAINER_DEFAULTS = {
    "max_epochs": 5,
    "logger": False,
    "enable_checkpointing": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
}


def _fit_parser() -> ArgumentParser:
    import lightning.pytorch as pl

    from .data.module import ActiveDataModule
    from .loop import LoopConfig
    from .model import TextClassifier

    parser = ArgumentParser(description="Run an active-learning simulation (or resume one).", exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file")
    parser.add_argument("--seed", type=int, default=0, help="run seed; model init, data order and strategy seeds derive from it")
    parser.add_argument("--run_dir", type=str, default="runs/lit_al", help="where the run is written (re-running continues it)")
    parser.add_argument("--overwrite", type=bool, default=False, help="delete an existing run in run_dir first")
    parser.add_argument("--resume", type=str | None, default=None, help="continue the run in this directory, with its saved config")
    parser.add_argument("--threads", type=int | None, default=None,
                        help="torch intra-op threads; null: OMP_NUM_THREADS, else the CPUs this process may use (lit_al.threads)")
    parser.add_class_arguments(TextClassifier, "model", skip=MODEL_SKIP, instantiate=False)
    parser.add_class_arguments(ActiveDataModule, "data", instantiate=False)
    parser.add_class_arguments(pl.Trainer, "trainer", instantiate=False, skip={"default_root_dir"})
    parser.set_defaults({f"trainer.{k}": v for k, v in TRAINER_DEFAULTS.items()})
    parser.add_argument(
        "--strategy", type=str | dict[str, Any], default="entropy",
        help="a registered name (entropy), {name: margin, <option>: value}, or {class_path: pkg.Class, init_args: {...}}",
    )
    parser.add_class_arguments(LoopConfig, "loop")
    return parser


def _experiment_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Run a grid of fit runs (strategies x seeds x scenarios).", exit_on_error=False)
    parser.add_argument("--config", type=str, required=True, help="grid YAML file (see configs/experiments/)")
    parser.add_argument("--experiment_dir", type=str | None, default=None, help="override the grid's experiment_dir")
    parser.add_argument("--jobs", type=int, default=1, help="cells run in parallel processes")
    parser.add_argument("--dry_run", type=bool, default=False, help="list the cells and their state; run nothing")
    return parser


def _report_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Write the report of an experiment directory.", exit_on_error=False)
    parser.add_argument("experiment_dir", type=str, help="a directory written by lit_al experiment")
    parser.add_argument("--out", type=str | None, default=None, help="report directory (default EXPERIMENT_DIR/report)")
    parser.add_argument("--metric", type=str | None, default=None, help="headline test metric (default: the grid's, else by task)")
    parser.add_argument("--batch_analysis", type=bool, default=True,
                        help="diversity, representativeness, Gd, Gu and overlap (re-embeds the pool with the round-0 models)")
    return parser


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="lit_al", description="Active learning for transformer text classifiers.", exit_on_error=False)
    subcommands = parser.add_subcommands(required=True)
    subcommands.add_subcommand("fit", _fit_parser(), help="run an active-learning simulation")
    subcommands.add_subcommand("experiment", _experiment_parser(), help="run a grid of simulations")
    subcommands.add_subcommand("report", _report_parser(), help="tables and figures of an experiment")
    return parser


def run_experiment(cfg: Namespace) -> int:
    from .experiment import load_grid, run_cells, run_finished, write_manifest

    grid = load_grid(cfg.config, cfg.experiment_dir)
    cells = grid.cells()
    fit_parser = _fit_parser()
    for cell in cells:  # every cell's config and strategy options are checked before anything runs
        try:
            parsed = fit_parser.parse_object(cell.config)
            build_strategy(parsed.strategy, bool(_as_dict(parsed.data).get("multi_label")))
        except Exception as exc:
            raise ConfigError(f"{cfg.config}: cell {cell.name}: {_first_line(exc)}") from None
    if cfg.dry_run:
        for cell in cells:
            print(f"{'finished' if run_finished(cell.run_dir) else 'to run':>8}  {cell.name}  ->  {cell.run_dir}")
        return 0
    grid.experiment_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(grid, cells)
    results = run_cells(cells, grid.experiment_dir, jobs=cfg.jobs)
    failed = [r for r in results if r.status in ("failed", "blocked")]
    print(f"\nexperiment directory: {grid.experiment_dir}  "
          f"({sum(r.status == 'done' for r in results)} run, {sum(r.status == 'skipped' for r in results)} skipped, "
          f"{len(failed)} failed or blocked)")
    for result in failed:
        print(f"  {result.status}: {result.cell.name}" + (f"  (log: {result.log_path})" if result.log_path else ""))
    return 1 if failed else 0


def run_report(cfg: Namespace) -> int:
    from .experiment.report import write_report

    path = write_report(cfg.experiment_dir, out_dir=cfg.out, metric=cfg.metric, batch_analysis=cfg.batch_analysis)
    print(f"report: {path}")
    return 0


def build_strategy(spec: str | dict[str, Any], multi_label: bool):
    """A strategy from a name, ``{name: ..., options}`` or ``{class_path: ..., init_args: {...}}``."""
    from .strategies import get_strategy

    if isinstance(spec, str):
        return get_strategy(spec, multi_label=multi_label)
    spec = dict(spec)
    if "class_path" in spec:
        name = spec.pop("class_path")
        options = dict(spec.pop("init_args", None) or {})
        if spec:
            raise ConfigError(f"strategy: unexpected keys {sorted(spec)} next to class_path (put options in init_args)")
    elif "name" in spec:
        name = spec.pop("name")
        options = spec
    else:
        raise ConfigError("strategy: give a registered name, {name: ..., options}, or {class_path: ..., init_args: ...}")
    options.setdefault("multi_label", multi_label)
    return get_strategy(name, **options)


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Namespace):
        return value.as_dict()
    return dict(value or {})


def run_fit(parser: ArgumentParser, cfg: Namespace) -> int:
    import lightning.pytorch as pl

    from .data.module import ActiveDataModule
    from .io import atomic_write_text
    from .loop import ActiveLoop, LoopConfig, format_round
    from .threads import set_threads

    set_threads(cfg.threads)
    cfg.threads = None  # a choice of this process, not of the run: a resume may choose another
    if cfg.resume:
        cfg.run_dir = str(cfg.resume)
    run_dir = Path(cfg.run_dir)
    config_path = run_dir / "config.yaml"
    overwrite = bool(cfg.overwrite)
    cfg.overwrite = False
    cfg.resume = None
    text = parser.dump(cfg, skip_none=False)
    if not overwrite and config_path.exists() and config_path.read_text(encoding="utf-8") != text:
        raise ConfigError(f"{run_dir} holds a run with a different config; use another --run_dir or --overwrite true")
    data_kwargs = _as_dict(cfg.data)
    data = ActiveDataModule(**data_kwargs)
    strategy = build_strategy(cfg.strategy, bool(data_kwargs.get("multi_label")))
    loop_config = LoopConfig(**_as_dict(cfg.loop))
    model_kwargs = _as_dict(cfg.model)
    trainer_cfg = cfg.trainer

    def make_trainer(round_dir: Path, callbacks: list, overrides: dict[str, Any] | None = None) -> pl.Trainer:
        instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # jsonargparse >= 4.49
        init = instantiate(Namespace(trainer=trainer_cfg.clone()))
        kwargs = _as_dict(init.trainer) if isinstance(init.trainer, Namespace) else dict(init.trainer)
        kwargs.update(overrides or {})  # what the loop needs of this Trainer, e.g. inference_mode=False
        user_callbacks = kwargs.pop("callbacks", None) or []
        if not isinstance(user_callbacks, list):
            user_callbacks = [user_callbacks]
        return pl.Trainer(**kwargs, callbacks=[*user_callbacks, *callbacks], default_root_dir=str(round_dir))

    metric_names: list[str] = []

    def report(row: dict[str, Any]) -> None:
        if not metric_names:
            metric_names.extend(_headline_metrics(row))
        print(format_round(row, metric_names), flush=True)

    loop = ActiveLoop(
        model_kwargs=model_kwargs, data=data, strategy=strategy, trainer_factory=make_trainer,
        run_dir=run_dir, seed=cfg.seed, loop=loop_config, on_round_end=report,
        round0_key=_round0_fingerprint(cfg),
    )
    loop.prepare(fresh=overwrite)  # validates data, model and initial set before anything is written
    atomic_write_text(config_path, text)
    metrics = loop.run()
    if not metrics.empty:
        columns = ["round", "labeled"] + [c for c in _headline_metrics(metrics.iloc[-1].to_dict()) if c in metrics]
        print("\n" + metrics[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nrun directory: {run_dir}")
    return 0


#: Options that do not change the round-0 model (what is queried, and where it is written).
ROUND0_IRRELEVANT = {"config", "strategy", "run_dir", "overwrite", "resume", "seed", "threads"}
ROUND0_IRRELEVANT_LOOP = {"query_size", "rounds", "max_labels", "cold_start_fallback", "keep_outputs", "round0_model_dir"}
#: Trainer options that only change what is printed.
ROUND0_IRRELEVANT_TRAINER = {"enable_progress_bar", "enable_model_summary"}


def _round0_fingerprint(cfg: Namespace) -> str:
    """The configuration a shared round-0 model depends on (model, data, trainer, monitor), as JSON."""
    import json

    config = {k: v for k, v in cfg.as_dict().items() if k not in ROUND0_IRRELEVANT and not k.startswith("__")}
    config["loop"] = {k: v for k, v in dict(config.get("loop") or {}).items() if k not in ROUND0_IRRELEVANT_LOOP}
    config["trainer"] = {k: v for k, v in dict(config.get("trainer") or {}).items() if k not in ROUND0_IRRELEVANT_TRAINER}
    return json.dumps(config, sort_keys=True, default=str)


def _headline_metrics(row: dict[str, Any]) -> list[str]:
    preferred = ["test_accuracy", "test_macro_f1", "test_micro_f1", "test_subset_accuracy",
                 "test_target_precision", "test_target_recall", "test_target_f1"]
    return [name for name in preferred if name in row]


def _quiet_libraries() -> None:
    """Silence library chatter that says nothing to a lit_al user (the loop prints its own progress)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for pattern in (".*does not have many workers.*", ".*custom batch sampler.*", ".*LeafSpec.*",
                    ".*module\\(s\\) in eval mode.*"):
        warnings.filterwarnings("ignore", message=pattern)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda", "transformers.modeling_utils"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _quiet_libraries()
    parser = build_parser()
    try:
        argv = _expand_resume(list(sys.argv[1:] if argv is None else argv))
        cfg = parser.parse_args(argv)
    except LitAlError as exc:
        print(f"lit_al: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # jsonargparse reports bad keys/values as exceptions with exit_on_error=False
        print(f"lit_al: error: {_first_line(exc)}", file=sys.stderr)
        return 2
    try:
        if cfg.subcommand == "fit":
            return run_fit(parser._subcommands_action._name_parser_map["fit"], cfg.fit)
        if cfg.subcommand == "experiment":
            return run_experiment(cfg.experiment)
        if cfg.subcommand == "report":
            return run_report(cfg.report)
    except LitAlError as exc:
        print(f"lit_al: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _expand_resume(argv: list[str]) -> list[str]:
    """``fit --resume DIR`` reads the run's saved ``DIR/config.yaml`` first (later arguments still apply)."""
    if not argv or argv[0] != "fit":
        return argv
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg == "--resume" and i + 1 < len(argv) else arg.partition("=")[2] if arg.startswith("--resume=") else None
        if value:
            saved = Path(value) / "config.yaml"
            if not saved.exists():
                raise ConfigError(f"--resume {value}: no config.yaml there")
            return ["fit", "--config", str(saved), *argv[1:]]
    return argv


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(line.strip() for line in text.splitlines()[:3]) if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
