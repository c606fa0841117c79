"""``lit_al experiment --config GRID.yaml``: run a grid of fit runs (strategies x seeds x scenarios).

Every cell's config and strategy options are checked before any cell runs; cells already
finished are skipped, so the same command finishes an interrupted grid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError, one_line

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace


def parser() -> ArgumentParser:
    from jsonargparse import ArgumentParser

    from ..config import add_flag
    from ..experiment.launchers import SlurmOptions

    parser = ArgumentParser(description="Run a grid of fit runs (strategies x seeds x scenarios).", exit_on_error=False)
    parser.add_argument("-c", "--config", type=str, required=True, help="grid YAML file (see configs/experiments/)")
    parser.add_argument("--experiment_dir", type=str | None, default=None, help="override the grid's experiment_dir")
    parser.add_argument("--jobs", type=int, default=1, help="cells run in parallel processes (--launcher local)")
    parser.add_argument("--launcher", type=str, default="local", help="local (processes on this machine) or slurm (submitit)")
    parser.add_argument("--devices", type=str | None, default=None,
                        help="local: GPUs to use, one cell per GPU at a time, e.g. 0,1,2,3 (sets CUDA_VISIBLE_DEVICES)")
    parser.add_argument("--slurm", type=SlurmOptions, default=SlurmOptions(), help="SLURM resources per cell (--launcher slurm)")
    add_flag(parser, "dry_run", default=False, help="list the cells and their state; run nothing")
    return parser


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    from ..experiment import load_grid, run_cells, run_finished, write_manifest
    from ..experiment.launchers import SlurmOptions, make_launcher

    grid = load_grid(cfg.config, cfg.experiment_dir)
    cells = grid.cells()
    _check_cells(cfg.config, cells)
    if cfg.dry_run:
        for cell in cells:
            print(f"{'finished' if run_finished(cell.run_dir) else 'to run':>8}  {cell.name}  ->  {cell.run_dir}")
        return 0
    devices = [d.strip() for d in cfg.devices.split(",") if d.strip()] if cfg.devices else None
    slurm = cfg.slurm if isinstance(cfg.slurm, SlurmOptions) else SlurmOptions(**cfg.slurm.as_dict())
    launcher = make_launcher(cfg.launcher, grid.experiment_dir, jobs=cfg.jobs, devices=devices, slurm=slurm)
    grid.experiment_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(grid, cells)
    results = run_cells(cells, grid.experiment_dir, launcher=launcher)
    failed = [r for r in results if r.status not in ("done", "skipped")]
    print(f"\nexperiment directory: {grid.experiment_dir}  "
          f"({sum(r.status == 'done' for r in results)} run, {sum(r.status == 'skipped' for r in results)} skipped, "
          f"{len(failed)} failed, interrupted or blocked)")
    for result in failed:
        print(f"  {result.status}: {result.cell.name}" + (f"  (log: {result.log_path})" if result.log_path else ""))
    return 1 if failed else 0


def _check_cells(grid_file: str, cells) -> None:
    """Parse every cell's config and build its strategy: a bad cell is one error line before anything runs."""
    from ..config import build_strategy, data_multi_label, fit_parser

    cell_parser = fit_parser()
    for cell in cells:
        try:
            parsed = cell_parser.parse_object(cell.config)
            build_strategy(parsed.strategy, data_multi_label(parsed))
        except Exception as exc:
            raise ConfigError(f"{grid_file}: cell {cell.name}: {one_line(exc)}") from None


def interrupted(cfg: Namespace) -> str:
    return "re-run the same command to finish the unfinished cells"
