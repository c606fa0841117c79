"""The ``lit_al`` command line (jsonargparse, in the style of LightningCLI).

``lit_al fit --config configs/demo.yaml`` runs an active-learning simulation.
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
    parser.add_class_arguments(TextClassifier, "model", skip=MODEL_SKIP, instantiate=False)
    parser.add_class_arguments(ActiveDataModule, "data", instantiate=False)
    parser.add_class_arguments(pl.Trainer, "trainer", instantiate=False, skip={"default_root_dir"})
    parser.set_defaults({f"trainer.{k}": v for k, v in TRAINER_DEFAULTS.items()})
    parser.add_argument(
        "--strategy", type=str | dict[str, Any], default="entropy",
        help="a registered name (entropy), {name: margin, <option>: value}, or {class_path: pkg.Class, init_args: {...}}",
    )
    parser.add_dataclass_arguments(LoopConfig, "loop")
    return parser


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="lit_al", description="Active learning for transformer text classifiers.", exit_on_error=False)
    subcommands = parser.add_subcommands(required=True)
    subcommands.add_subcommand("fit", _fit_parser(), help="run an active-learning simulation")
    return parser


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
    )
    loop.prepare(fresh=overwrite)  # validates data, model and initial set before anything is written
    atomic_write_text(config_path, text)
    metrics = loop.run()
    if not metrics.empty:
        columns = ["round", "labeled"] + [c for c in _headline_metrics(metrics.iloc[-1].to_dict()) if c in metrics]
        print("\n" + metrics[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nrun directory: {run_dir}")
    return 0


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
