"""Building a run from its configuration, shared by the command line and the experiment runner.

The ``fit`` parser (jsonargparse, LightningCLI style), lit_al's Trainer defaults, the model,
data and strategy built from their specs (a plain mapping, or ``class_path``/``init_args`` for
a subclass), the fingerprints that decide whether two configs give the same results, and the
Trainer factory the loop calls once per Trainer. Nothing here prints or exits.
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentParser, Namespace

from .errors import ConfigError, one_line

log = logging.getLogger(__name__)

#: Task facts of ``TextClassifier`` that come from the data module at run time, not the config.
MODEL_SKIP = {"num_labels", "multi_label", "label_names", "positive_index"}
#: Trainer defaults of lit_al (each round builds its own Trainer; the loop writes its own metrics).
TRAINER_DEFAULTS = {
    "max_epochs": 5,
    "logger": False,
    "enable_checkpointing": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
}
DEFAULT_MODEL_CLASS = "lit_al.model.TextClassifier"
DEFAULT_DATA_CLASS = "lit_al.data.module.ActiveDataModule"

#: Options that do not change the round-0 model (what is queried, and where it is written).
ROUND0_IRRELEVANT = {"config", "strategy", "run_dir", "overwrite", "resume", "seed", "threads"}
ROUND0_IRRELEVANT_LOOP = {"query_size", "rounds", "max_labels", "cold_start_fallback", "keep_outputs", "round0_model_dir",
                          "oracle", "repropose_skipped", "stop_set_size", "stop_when", "overlap"}
#: Data options that do not change the round-0 model (which pool rows later rounds score; where tokens are cached).
ROUND0_IRRELEVANT_DATA = {"pool_subsample", "cache_dir", "num_workers"}
#: Trainer options that only change what is shown or logged.
DISPLAY_ONLY_TRAINER = {"enable_progress_bar", "enable_model_summary", "logger"}
#: Options a resumed run may change: where and how it is shown, and how far it goes.
#: Data options added after shared round-0 models were saved: at these values they change nothing,
#: and are left out of the round-0 fingerprint so that those models stay usable.
ROUND0_LATER_DATA_DEFAULTS = {"drop_empty_texts": False}
RESUME_FREE = {"config", "run_dir", "overwrite", "resume", "threads"}
RESUME_FREE_LOOP = {"rounds", "max_labels", "keep_outputs", "round0_model_dir", "overlap"}
RESUME_FREE_DATA = {"cache_dir", "num_workers"}


def add_flag(parser: ArgumentParser, name: str, *, default: bool, help: str) -> None:
    """A yes/no option as people type it: ``--name`` alone, ``--name true|false`` and ``--no_name`` all work."""
    parser.add_argument(f"--{name}", action=ActionYesNo, nargs="?", default=default, help=help)


def fit_parser() -> ArgumentParser:
    """The parser of ``lit_al fit`` (also reads a run's saved ``config.yaml``)."""
    import lightning.pytorch as pl

    from .data.module import ActiveDataModule
    from .loop import LoopConfig
    from .model import TextClassifier

    parser = ArgumentParser(description="Run an active-learning simulation (or resume one).", exit_on_error=False)
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="YAML config file")
    parser.add_argument("--seed", type=int, default=0, help="run seed; model init, data order and strategy seeds derive from it")
    parser.add_argument("--run_dir", type=str, default="runs/lit_al", help="where the run is written (re-running continues it)")
    add_flag(parser, "overwrite", default=False, help="delete the run in run_dir first (only a lit_al run)")
    parser.add_argument("--resume", type=str | None, default=None, help="continue the run in this directory, with its saved config")
    parser.add_argument("--threads", type=int | None, default=None,
                        help="torch intra-op threads; null: OMP_NUM_THREADS, else the CPUs this process may use (lit_al.threads)")
    parser.add_subclass_arguments(TextClassifier, "model", skip=MODEL_SKIP, instantiate=False, required=False,
                                  default=Namespace(class_path=DEFAULT_MODEL_CLASS))
    parser.add_subclass_arguments(ActiveDataModule, "data", instantiate=False, required=True,
                                  default=Namespace(class_path=DEFAULT_DATA_CLASS))
    parser.add_class_arguments(pl.Trainer, "trainer", instantiate=False, skip={"default_root_dir"})
    parser.set_defaults({f"trainer.{k}": v for k, v in TRAINER_DEFAULTS.items()})
    parser.add_argument(
        "--strategy", type=str | dict[str, Any], default="entropy",
        help="a registered name (entropy), {name: margin, <option>: value}, or {class_path: pkg.Class, init_args: {...}}",
    )
    parser.add_class_arguments(LoopConfig, "loop")
    return parser


def as_dict(value: Any) -> dict[str, Any]:
    """A Namespace or mapping as a plain dict (nested Namespaces included)."""
    if isinstance(value, Namespace):
        return value.as_dict()
    return dict(value or {})


def class_spec(value: Any, default: str) -> tuple[str, dict[str, Any]]:
    """``(class_path, init_args)`` of a ``model``/``data`` section (plain keys mean the default class)."""
    spec = as_dict(value)
    if "class_path" not in spec:
        return default, spec
    return spec["class_path"], as_dict(spec.get("init_args"))


def _import_class(class_path: str, base: type) -> type:
    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"class_path {class_path!r}: cannot import it: {one_line(exc)}") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"class_path {class_path!r} is not a subclass of {base.__name__}")
    return cls


def model_spec(cfg: Namespace) -> tuple[type, dict[str, Any]]:
    """The model class of a run and its configured keyword arguments (task facts come from the data)."""
    from .model import TextClassifier

    class_path, kwargs = class_spec(cfg.model, DEFAULT_MODEL_CLASS)
    return _import_class(class_path, TextClassifier), kwargs


def build_data(cfg: Namespace):
    """The run's ``ActiveDataModule`` (or the configured subclass), not yet loaded."""
    from .data.module import ActiveDataModule

    class_path, kwargs = class_spec(cfg.data, DEFAULT_DATA_CLASS)
    return _import_class(class_path, ActiveDataModule)(**kwargs)


def build_strategy(spec: str | dict[str, Any], multi_label: bool):
    """A strategy from a name, ``{name: ..., options}`` or ``{class_path: ..., init_args: {...}}``."""
    if isinstance(spec, str):
        return _checked_strategy(spec, {"multi_label": multi_label})
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
    return _checked_strategy(name, options)


def _checked_strategy(name: str, options: dict[str, Any]):
    """``get_strategy``, and its prediction request built once: the options of the outputs it needs
    (a plug-in output's own included) are checked before anything runs."""
    from .strategies import get_strategy

    strategy = get_strategy(name, **options)
    strategy.prediction_request()
    return strategy


def data_multi_label(cfg: Namespace) -> bool:
    return bool(class_spec(cfg.data, DEFAULT_DATA_CLASS)[1].get("multi_label"))


def _normalised(cfg: Namespace) -> dict[str, Any]:
    """The config as plain data, ``model``/``data`` of the default classes written as plain keys.

    Plain keys keep fingerprints of runs made before ``class_path`` was accepted unchanged.
    """
    config = {k: v for k, v in cfg.as_dict().items() if not k.startswith("__")}
    for section, default in (("model", DEFAULT_MODEL_CLASS), ("data", DEFAULT_DATA_CLASS)):
        class_path, kwargs = class_spec(config.get(section), default)
        config[section] = kwargs if class_path == default else {"class_path": class_path, "init_args": kwargs}
    return config


def round0_fingerprint(cfg: Namespace) -> str:
    """The configuration a shared round-0 model depends on (model, data, trainer, monitor), as JSON."""
    config = {k: v for k, v in _normalised(cfg).items() if k not in ROUND0_IRRELEVANT}
    config["loop"] = {k: v for k, v in dict(config.get("loop") or {}).items() if k not in ROUND0_IRRELEVANT_LOOP}
    config["trainer"] = {k: v for k, v in dict(config.get("trainer") or {}).items() if k not in DISPLAY_ONLY_TRAINER}
    data = dict(config.get("data") or {})

    def relevant(options: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in options.items()
                if k not in ROUND0_IRRELEVANT_DATA and not (k in ROUND0_LATER_DATA_DEFAULTS and v == ROUND0_LATER_DATA_DEFAULTS[k])}

    if "class_path" in data:
        data["init_args"] = relevant(dict(data.get("init_args") or {}))
    else:
        data = relevant(data)
    config["data"] = data
    return json.dumps(config, sort_keys=True, default=str)


def _results_view(cfg: Namespace) -> dict[str, Any]:
    """The options that change a run's labels and metrics, flattened to dotted keys."""
    config = {k: v for k, v in _normalised(cfg).items() if k not in RESUME_FREE}
    drop = {"loop": RESUME_FREE_LOOP, "trainer": DISPLAY_ONLY_TRAINER, "data": RESUME_FREE_DATA}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "strategy":
            for sub, inner in value.items():
                if sub not in drop.get(key, ()):
                    flat[f"{key}.{sub}"] = json.dumps(inner, sort_keys=True, default=str)
        else:
            flat[key] = json.dumps(value, sort_keys=True, default=str)
    return flat


def result_differences(saved: Namespace, cfg: Namespace) -> list[str]:
    """``key: saved -> new`` for every option that differs and changes results (empty: same run)."""
    old, new = _results_view(saved), _results_view(cfg)
    return [f"{k}: {old.get(k, '-')} -> {new.get(k, '-')}" for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]


def trainer_factory(parser: ArgumentParser, trainer_cfg: Namespace, logger: Any = None) -> Callable[..., Any]:
    """``factory(round_dir, callbacks, overrides=None)``: a fresh ``pl.Trainer`` per call.

    Callbacks are instantiated anew for every Trainer (no stale state between rounds); the run's
    one ``logger`` is shared by every fit Trainer, under the round's name as the metric prefix.
    ``overrides`` replace configured Trainer arguments (``logger: False`` for prediction).
    """
    import lightning.pytorch as pl

    def make(round_dir: Path, callbacks: list, overrides: dict[str, Any] | None = None) -> pl.Trainer:
        instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # jsonargparse >= 4.49
        config = trainer_cfg.clone()
        config.logger = False  # the run's logger is built once (see build_logger), not once per Trainer
        init = instantiate(Namespace(trainer=config))
        kwargs = as_dict(init.trainer) if isinstance(init.trainer, Namespace) else dict(init.trainer)
        kwargs["logger"] = logger.for_round(Path(round_dir).name) if logger is not None else False
        kwargs.update(overrides or {})
        user_callbacks = kwargs.pop("callbacks", None) or []
        if not isinstance(user_callbacks, list):
            user_callbacks = [user_callbacks]
        return pl.Trainer(**kwargs, callbacks=[*user_callbacks, *callbacks], default_root_dir=str(round_dir))

    return make


def build_logger(parser: ArgumentParser, trainer_cfg: Namespace, run_dir: Path):
    """The run's ``RunLogger`` from ``trainer.logger`` (None without one).

    Built once, before anything is written, so a logger whose package is missing is one
    error line, not a traceback after the run directory exists.
    """
    from .run_logger import RunLogger, missing_dependency_message

    spec = trainer_cfg.logger
    if spec is None or spec is False:
        return None
    try:
        if spec is True:  # Lightning's own default: TensorBoard when installed, else CSV
            from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

            try:
                loggers: Any = TensorBoardLogger(save_dir=str(run_dir))
            except ModuleNotFoundError:
                loggers = CSVLogger(save_dir=str(run_dir))
        else:
            instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
            loggers = instantiate(Namespace(trainer=Namespace(logger=spec))).trainer.logger
    except Exception as exc:
        missing = _import_error_in(exc)
        message = missing_dependency_message(spec, missing) if missing is not None else f"trainer.logger: {one_line(exc)}"
        raise ConfigError(message) from None
    return RunLogger(loggers if isinstance(loggers, list) else [loggers])


def _import_error_in(exc: BaseException | None) -> ImportError | None:
    """The ImportError behind ``exc`` (jsonargparse wraps what a class's ``__init__`` raises)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ImportError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def check_run_dir(parser: ArgumentParser, cfg: Namespace, run_dir: Path, overwrite: bool) -> None:
    """Refuse a ``run_dir`` this config must not write into, before anything is written.

    A run there continues when its saved config gives the same results (display options,
    paths, ``loop.rounds`` and ``loop.max_labels`` may change); a state without its config,
    or a config that is not lit_al's, is never adopted.
    """
    from .rundir import CONFIG_FILE, STATE_FILE, check_overwritable, check_writable

    check_writable(run_dir)
    if overwrite:
        check_overwritable(run_dir)
        return
    config_path, state_path = run_dir / CONFIG_FILE, run_dir / STATE_FILE
    if not config_path.exists():
        if state_path.exists():
            raise ConfigError(f"{run_dir} holds a state.json without its config.yaml; it cannot be resumed safely: "
                              "choose another --run_dir, or --overwrite true to start over there")
        return
    try:
        saved = parser.parse_path(str(config_path))
    except Exception as exc:
        raise ConfigError(f"{config_path} is not a lit_al config ({one_line(exc)}); choose another --run_dir") from None
    differences = result_differences(saved, cfg)
    if not differences:
        return
    if _completed_rounds(state_path) == 0:
        log.warning("%s: replacing the config of a run that completed no round (%s)", run_dir, "; ".join(differences))
        return
    shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
    raise ConfigError(
        f"{run_dir} holds a run with a config that gives other results ({shown}); continue it with: "
        f"lit_al fit --resume {run_dir} (rounds, max_labels and display options may change), or choose another --run_dir"
    )


def _completed_rounds(state_path: Path) -> int:
    try:
        return int(json.loads(state_path.read_text(encoding="utf-8")).get("completed_rounds", 0))
    except (OSError, ValueError, AttributeError):
        return 0


#: ``data.class_path`` values that name lit_al's own data module (its files are read by ``DataFiles``).
OWN_DATA_CLASSES = {DEFAULT_DATA_CLASS, "lit_al.data.ActiveDataModule", "lit_al.ActiveDataModule"}


def saved_data_files(run_dir: Path):
    """The run's data from its saved ``config.yaml``, not yet loaded, for reading its files only.

    A run of lit_al's own data module gets a ``DataFiles`` (pandas, no torch, no Lightning:
    ``lit_al label`` answers at once); a run of another data class gets that class, built as
    ``build_data`` does (its ``read_split`` may read another format).
    """
    import yaml

    from .data.files import DataFiles
    from .rundir import CONFIG_FILE

    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(f"{run_dir}: no config.yaml (not a lit_al run directory)")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path} is not a lit_al config ({one_line(exc)})") from None
    class_path, options = class_spec((raw or {}).get("data") if isinstance(raw, dict) else None, DEFAULT_DATA_CLASS)
    if class_path not in OWN_DATA_CLASSES:
        return build_data(saved_config(run_dir))
    if not options.get("train"):
        raise ConfigError(f"{config_path} is not a lit_al config (no data.train)")
    return DataFiles.from_options(options)


def saved_config(run_dir: Path) -> Namespace:
    """The parsed ``config.yaml`` of a run directory (one line when there is none, or it is not lit_al's)."""
    from .rundir import CONFIG_FILE

    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(f"{run_dir}: no config.yaml (not a lit_al run directory)")
    try:
        return fit_parser().parse_path(str(config_path))
    except Exception as exc:
        raise ConfigError(f"{config_path} is not a lit_al config ({one_line(exc)})") from None


@dataclass
class RunPlan:
    """A run built from its config, ready to go: the loop, its logger, where it writes, and how."""

    loop: Any
    logger: Any
    run_dir: Path
    overwrite: bool
    config_text: str

    def execute(self):
        """Prepare (validating before anything is written) and run under the run directory's lock;
        returns the metrics table."""
        from .run_lock import run_lock

        loop, existed = self.loop, self.run_dir.is_dir()
        with run_lock(self.run_dir, writes=loop.writes):
            loop.prepare(fresh=self.overwrite, config_text=self.config_text)
            with run_lock(self.run_dir, writes=loop.writes and not existed):  # a new run: locked once its folder exists
                metrics = loop.run()
        if self.logger is not None:
            self.logger.finalize("success")
        return metrics


def build_run(parser: ArgumentParser, cfg: Namespace, on_round_end: Callable[[dict[str, Any]], None] | None = None) -> RunPlan:
    """The ``ActiveLoop`` a parsed ``fit`` config describes (``--resume`` and ``--overwrite`` resolved and checked)."""
    from .loop import ActiveLoop, LoopConfig

    run_dir = Path(cfg.resume or cfg.run_dir)
    overwrite = bool(cfg.overwrite)
    cfg.run_dir, cfg.overwrite, cfg.resume = str(run_dir), False, None
    check_run_dir(parser, cfg, run_dir, overwrite)
    data = build_data(cfg)
    strategy = build_strategy(cfg.strategy, data.multi_label)
    model_class, model_kwargs = model_spec(cfg)
    logger = build_logger(parser, cfg.trainer, run_dir)

    def report(row: dict[str, Any]) -> None:
        if logger is not None:
            logger.log_round(row)
        if on_round_end is not None:
            on_round_end(row)

    loop = ActiveLoop(
        model_kwargs=model_kwargs, model_class=model_class, data=data, strategy=strategy,
        trainer_factory=trainer_factory(parser, cfg.trainer, logger), run_dir=run_dir, seed=cfg.seed,
        loop=LoopConfig(**as_dict(cfg.loop)), on_round_end=report, round0_key=round0_fingerprint(cfg),
    )
    return RunPlan(loop, logger, run_dir, overwrite, parser.dump(cfg, skip_none=False))
