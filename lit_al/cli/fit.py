"""``lit_al fit``: run an active-learning simulation, or continue one (``--resume RUN_DIR``).

The parser is built by jsonargparse from the signatures of the model, the data module, the
Lightning ``Trainer`` and ``LoopConfig`` (``lit_al.config.fit_parser``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..builtin import config_path, is_builtin
from ..errors import ConfigError
from .next_step import waiting_line

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace

#: Test metrics printed after each round, when the run has them.
HEADLINE_METRICS = ("test_accuracy", "test_macro_f1", "test_micro_f1", "test_subset_accuracy",
                    "test_target_precision", "test_target_recall", "test_target_f1")
_BOOLEAN_ANNOTATIONS = (bool, "bool", "bool | None", "Optional[bool]")


def parser() -> ArgumentParser:
    from ..config import fit_parser

    return fit_parser()


def prepare(argv: list[str]) -> list[str]:
    """``--resume DIR`` reads ``DIR/config.yaml`` first; ``--config builtin:NAME`` names a shipped config."""
    return _expand_builtin(_expand_resume(argv))


def yes_no_options() -> set[str]:
    """``--model.X``/``--data.X`` (and ``.init_args.X``) for each boolean argument of the default classes.

    jsonargparse reads these keys inside the ``model``/``data`` value, so its parser cannot list
    them; a subclass's own new boolean arguments still want a value.
    """
    from ..data.module import ActiveDataModule
    from ..model import TextClassifier

    found: set[str] = set()
    for group, cls in (("model", TextClassifier), ("data", ActiveDataModule)):
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            if parameter.annotation in _BOOLEAN_ANNOTATIONS:
                found |= {f"--{group}.{name}", f"--{group}.init_args.{name}"}
    return found


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    from ..config import build_run
    from ..loop import format_round
    from ..threads import set_threads

    set_threads(cfg.threads)
    cfg.threads = None  # a choice of this process, not of the run: a resume may choose another

    metric_names: list[str] = []

    def report(row: dict[str, Any]) -> None:
        if not metric_names:
            metric_names.extend(headline_metrics(row))
        print(format_round(row, metric_names), flush=True)

    plan = build_run(parser, cfg, on_round_end=report)
    metrics = plan.execute()
    loop, run_dir = plan.loop, plan.run_dir
    if not loop.writes:  # another DDP rank: rank 0 reports
        return 0
    if not metrics.empty:
        columns = ["round", "labeled"] + [c for c in headline_metrics(metrics.iloc[-1].to_dict()) if c in metrics]
        print("\n" + metrics[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if loop.waiting_for_labels:
        print("\n" + waiting_line(run_dir, loop.data.state))
    print(f"\nrun directory: {run_dir}")
    return 0


def interrupted(cfg: Namespace) -> str:
    return f"the run is unfinished; continue it with: lit_al fit --resume {cfg.run_dir}"


def headline_metrics(row: dict[str, Any]) -> list[str]:
    return [name for name in HEADLINE_METRICS if name in row]


def resume_value(argv: list[str]) -> str | None:
    """The directory of ``--resume DIR`` (or ``--resume=DIR``) in ``argv``, if any."""
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg == "--resume" and i + 1 < len(argv) else arg.partition("=")[2] if arg.startswith("--resume=") else None
        if value:
            return value
    return None


def _expand_resume(argv: list[str]) -> list[str]:
    """``fit --resume DIR`` reads the run's saved ``DIR/config.yaml`` first (later arguments still apply)."""
    from ..rundir import CONFIG_FILE

    value = resume_value(argv)
    if value:
        saved = Path(value) / CONFIG_FILE
        if not saved.is_file():
            raise ConfigError(f"--resume {value}: no {CONFIG_FILE} there (not a lit_al run)")
        return ["--config", str(saved), *argv]
    return argv


def _expand_builtin(argv: list[str]) -> list[str]:
    """``--config builtin:demo.yaml`` names a config shipped inside the package (``lit_al.builtin``)."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg in ("-c", "--config") and is_builtin(out[i + 1]):
            try:
                out[i + 1] = str(config_path(out[i + 1]))
            except ConfigError as exc:
                raise ConfigError(f"--config {exc}") from None
    return out
