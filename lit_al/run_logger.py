"""One experiment logger per run (TensorBoard, CSV, W&B, ... as configured in ``trainer.logger``).

Every fit Trainer of the run shares the same logger objects, so a run is one version folder
(one W&B run): each round's fit curves appear under the round's name as a prefix
(``round_002-train_loss``), and the round's test metrics are logged once more without a prefix
at the labeled count as the step, which draws the learning curve.
"""

from __future__ import annotations

import math
from numbers import Number
from typing import Any

#: Extras that install what a logger needs (pip install "lit_al[NAME]").
LOGGER_EXTRAS = {"TensorBoardLogger": "tensorboard", "WandbLogger": "wandb", "MLFlowLogger": "mlflow",
                 "CometLogger": "comet", "NeptuneLogger": "neptune"}


class RunLogger:
    """The run's loggers, handed to each fit Trainer with the round's prefix."""

    def __init__(self, loggers: list[Any]) -> None:
        self.loggers = list(loggers)

    def for_round(self, round_name: str) -> list[Any]:
        """The loggers for a Trainer of round ``round_name``, prefixing its metrics with that name."""
        for logger in self.loggers:
            self._set_prefix(logger, round_name)
        return self.loggers

    def log_round(self, row: dict[str, Any]) -> None:
        """Log a finished round's numeric results at step = labeled count (the learning curve)."""
        metrics = {k: float(v) for k, v in row.items()
                   if isinstance(v, Number) and not isinstance(v, bool) and k != "labeled" and not math.isnan(float(v))}
        for logger in self.loggers:
            self._set_prefix(logger, "")
            logger.log_metrics(metrics, step=int(row["labeled"]))
            logger.save()

    def finalize(self, status: str) -> None:
        for logger in self.loggers:
            logger.finalize(status)

    @staticmethod
    def _set_prefix(logger: Any, prefix: str) -> None:
        # Lightning's loggers take a prefix only at construction and keep it in ``_prefix``;
        # one logger object must serve every round, so it is switched per round.
        if hasattr(logger, "_prefix"):
            logger._prefix = prefix


def missing_dependency_message(logger_spec: Any, exc: BaseException) -> str:
    """One line naming the logger, the module it lacks and the extra that installs it."""
    class_path = str(getattr(logger_spec, "class_path", logger_spec))
    name = class_path.rsplit(".", 1)[-1]
    extra = LOGGER_EXTRAS.get(name)
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = f'; install it with: pip install "lit_al[{extra}]"' if extra else ""
    return f"trainer.logger {name}: a package it needs is missing ({reason}){hint}"
