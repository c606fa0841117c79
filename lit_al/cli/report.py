"""``lit_al report EXPERIMENT_DIR...``: the tables and figures of an experiment (``lit_al.experiment.report``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace


def parser() -> ArgumentParser:
    from jsonargparse import ArgumentParser

    from ..config import add_flag

    parser = ArgumentParser(description="Write the report of an experiment directory.", exit_on_error=False)
    parser.add_argument("experiment_dirs", type=str, nargs="+",
                        help="directories written by lit_al experiment, or earlier report folders; several of one grid "
                             "are merged as more seeds (or pooled with --pool true)")
    parser.add_argument("--out", type=str | None, default=None,
                        help="report directory (default EXPERIMENT_DIR/report, or FIRST_DIR/report_pooled with --pool true; "
                             "required when several directories are merged)")
    add_flag(parser, "pool", default=False,
             help="one significance test over the (scenario, seed, round) pairs of every scenario of every "
                  "experiment given (IBM's pooling when they are the datasets of one scenario type)")
    parser.add_argument("--metric", type=str | None, default=None, help="headline test metric (default: the grid's, else by task)")
    add_flag(parser, "batch_analysis", default=True,
             help="diversity, representativeness, Gd, Gu and overlap (re-embeds the pool with the round-0 models)")
    return parser


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    from ..experiment.report import write_pooled_report, write_report

    if cfg.pool:
        out = cfg.out or str(Path(cfg.experiment_dirs[0]) / "report_pooled")
        path = write_pooled_report(cfg.experiment_dirs, out, metric=cfg.metric)
    else:
        if len(cfg.experiment_dirs) > 1 and not cfg.out:
            raise ConfigError("report: several directories of one grid are merged into one report; name it with --out")
        path = write_report(cfg.experiment_dirs, out_dir=cfg.out, metric=cfg.metric, batch_analysis=cfg.batch_analysis)
    print(f"report: {path}")
    return 0
