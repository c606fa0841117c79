"""The ``lit_al`` command line (jsonargparse, in the style of LightningCLI).

``lit_al fit --config configs/demo.yaml`` runs an active-learning simulation;
``lit_al experiment --config GRID.yaml`` runs a grid of them and
``lit_al report EXPERIMENT_DIR`` writes its tables and figures.
Every option can come from the YAML file or the command line
(``--model.lr 3e-5``, ``--data.batch_size 16``, ``--trainer.max_epochs 3``,
``--strategy margin``, ``--loop.query_size 25``); unknown keys are errors;
``--print_config`` prints the resolved configuration.

Each verb has an entry in ``VERBS``; only the parser of the verb given is built, so
``lit_al --help`` and ``lit_al --version`` answer without importing Lightning.
"""

from __future__ import annotations

import errno
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from jsonargparse import ArgumentParser, Namespace

from . import __version__
from .config import add_flag
from .distributed import is_writer
from .errors import ConfigError, LitAlError, RunInterrupted, one_line

log = logging.getLogger("lit_al")

BUILTIN_PREFIX = "builtin:"


def _experiment_parser() -> ArgumentParser:
    from .experiment.launchers import SlurmOptions

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


def _report_parser() -> ArgumentParser:
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


def _fit_parser() -> ArgumentParser:
    from .config import fit_parser

    return fit_parser()


def _label_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Import a person's answers to the pending batch of a run.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="the run directory (lit_al query wrote its batch there)")
    parser.add_argument("file", type=str, help="answers: the filled to_label.csv, a Label Studio JSON export, "
                        "or Prodigy / Argilla JSONL")
    parser.add_argument("--annotator", type=str | None, default=None, help="who answered (when the file does not say)")
    add_flag(parser, "overwrite", default=False, help="let an answer correct an earlier label")
    return parser


def _annotate_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Serve the labeling page of a run's pending batch.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="the run directory (lit_al query wrote its batch there)")
    parser.add_argument("--host", type=str, default="127.0.0.1", help="address to bind; off loopback a token is required")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.add_argument("--token", type=str | None, default=None,
                        help="every request must carry it (?token=...); generated and printed when --host is not loopback")
    parser.add_argument("--annotator", type=str | None, default=None, help="the name recorded with answers (the page can change it)")
    return parser


def run_annotate(parser: ArgumentParser, cfg: Namespace) -> int:
    """``lit_al annotate RUN_DIR``: the labeling page (``lit_al.annotate``)."""
    from .annotate.server import serve

    _remove_stale_writes(Path(cfg.run_dir))
    return serve(Path(cfg.run_dir), host=cfg.host, port=cfg.port, token=cfg.token, annotator=cfg.annotator)


def _remove_stale_writes(run_dir: Path) -> None:
    """What killed writes left in a run (``rundir.remove_stale_writes``): label and annotate clean up as fit does."""
    from .rundir import remove_stale_writes

    remove_stale_writes(run_dir)


def _labelstudio_parser() -> ArgumentParser:
    from .integrations.labelstudio.command import parser

    return parser()


def run_labelstudio(parser: ArgumentParser, cfg: Namespace) -> int:
    """``lit_al labelstudio push|pull|watch RUN_DIR``: a live Label Studio project (``lit_al.integrations``)."""
    from .integrations.labelstudio.command import run

    return run(parser, cfg)


def run_experiment(parser: ArgumentParser, cfg: Namespace) -> int:
    from .config import build_strategy, data_multi_label, fit_parser
    from .experiment import load_grid, run_cells, run_finished, write_manifest

    grid = load_grid(cfg.config, cfg.experiment_dir)
    cells = grid.cells()
    cell_parser = fit_parser()
    for cell in cells:  # every cell's config and strategy options are checked before anything runs
        try:
            parsed = cell_parser.parse_object(cell.config)
            build_strategy(parsed.strategy, data_multi_label(parsed))
        except Exception as exc:
            raise ConfigError(f"{cfg.config}: cell {cell.name}: {one_line(exc)}") from None
    if cfg.dry_run:
        for cell in cells:
            print(f"{'finished' if run_finished(cell.run_dir) else 'to run':>8}  {cell.name}  ->  {cell.run_dir}")
        return 0
    from .experiment.launchers import SlurmOptions, make_launcher

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


def run_report(parser: ArgumentParser, cfg: Namespace) -> int:
    from .experiment.report import write_pooled_report, write_report

    if cfg.pool:
        out = cfg.out or str(Path(cfg.experiment_dirs[0]) / "report_pooled")
        path = write_pooled_report(cfg.experiment_dirs, out, metric=cfg.metric)
    else:
        if len(cfg.experiment_dirs) > 1 and not cfg.out:
            raise ConfigError("report: several directories of one grid are merged into one report; name it with --out")
        path = write_report(cfg.experiment_dirs, out_dir=cfg.out, metric=cfg.metric, batch_analysis=cfg.batch_analysis)
    print(f"report: {path}")
    return 0


def run_fit(parser: ArgumentParser, cfg: Namespace) -> int:
    from .config import build_run
    from .loop import format_round
    from .threads import set_threads

    set_threads(cfg.threads)
    cfg.threads = None  # a choice of this process, not of the run: a resume may choose another

    metric_names: list[str] = []

    def report(row: dict[str, Any]) -> None:
        if not metric_names:
            metric_names.extend(_headline_metrics(row))
        print(format_round(row, metric_names), flush=True)

    plan = build_run(parser, cfg, on_round_end=report)
    metrics = plan.execute()
    loop, run_dir = plan.loop, plan.run_dir
    if not loop.writes:  # another DDP rank: rank 0 reports
        return 0
    if not metrics.empty:
        columns = ["round", "labeled"] + [c for c in _headline_metrics(metrics.iloc[-1].to_dict()) if c in metrics]
        print("\n" + metrics[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if loop.waiting_for_labels:
        print("\n" + waiting_line(run_dir, loop.data.state))
    print(f"\nrun directory: {run_dir}")
    return 0


def run_query(parser: ArgumentParser, cfg: Namespace) -> int:
    """``lit_al query``: ``fit`` with a person as the oracle (commit their answers, train, propose, stop).

    While no answer to the pending batch has arrived there is nothing to train on: it says so at
    once, without loading the data or the model.
    """
    cfg.loop.oracle = "person"
    if not cfg.overwrite and said_no_labels_arrived(Path(cfg.resume or cfg.run_dir)):
        return 0
    return run_fit(parser, cfg)


def said_no_labels_arrived(run_dir: Path) -> bool:
    """Whether ``run_dir`` waits for a batch no answer has arrived for (then say so, and what to do: True)."""
    from .product.run_files import read_batch_progress

    batch = read_batch_progress(run_dir)
    if batch is None or batch.answered:
        return False
    print(f"no labels arrived for the round-{batch.round} batch since it was proposed: nothing to train on yet")
    print(batch_line(run_dir, batch.round, batch.open, batch.size))
    return True


def batch_line(run_dir: Path, round_index: int, left: int, size: int) -> str:
    """What to do next when a person has the batch of ``round_index``."""
    folder = run_dir / "rounds" / f"round_{round_index:03d}"
    return (f"{left} of {size} items to label: fill {folder / 'to_label.csv'} (or use "
            f"label_studio_tasks.json / to_label.jsonl there), then run: lit_al label {run_dir} FILE "
            f"&& lit_al query --resume {run_dir}")


def waiting_line(run_dir: Path, state) -> str:
    """What to do next when a person has the batch."""
    return batch_line(run_dir, state.pending.round, len(state.open_pending()), len(state.pending.pool_indices))


def run_label(parser: ArgumentParser, cfg: Namespace) -> int:
    """``lit_al label RUN_DIR FILE``: validate a person's answers, then record them in one atomic write."""
    from .labeling import read_answer_file
    from .session import import_answers, load_run_files

    if cfg.annotator is not None:  # one line now, not a UnicodeEncodeError when the labels are saved
        from .labeling.answers import check_name

        check_name(cfg.annotator, "--annotator")
    run_dir = Path(cfg.run_dir)
    data = load_run_files(run_dir)  # the pool's ids and the label schema, without torch
    found = read_answer_file(cfg.file, data.schema, data.label_separator)
    _remove_stale_writes(run_dir)
    summary = import_answers(run_dir, found.answers, schema=data.schema, ids=data.pool.ids,
                             overwrite=bool(cfg.overwrite), annotator=cfg.annotator)
    print(f"{cfg.file}: {summary.line()}")
    for note in found.notes():  # records read without an answer, annotators who disagreed
        print(f"  {note}")
    print(label_next_step(run_dir, cfg.file, summary))
    return 0


def label_next_step(run_dir: Path, file: str, summary) -> str:
    """What ``lit_al label`` says after an import: what to do next, or that nothing new came in and which file does."""
    from .product.run_files import read_batch_progress

    batch = read_batch_progress(run_dir)
    resume = f"lit_al query --resume {run_dir}"
    if summary.added or summary.overwritten or summary.skipped:
        return f"next: {resume}   (trains on every label and proposes the next batch)"
    said = f"nothing new was labeled: {file} holds no answer that is not recorded already"
    if batch is None:
        return f"{said}; no batch is pending (next: {resume})"
    if batch.open == 0:
        return f"{said}; every item of the round-{batch.round} batch is answered (next: {resume})"
    return f"{said}; the current batch is round {batch.round}'s: {batch_line(run_dir, batch.round, batch.open, batch.size)}"


def _export_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Write a run's last model as a Hugging Face folder.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="a run directory written by lit_al fit")
    parser.add_argument("out_dir", type=str, help="the folder to write (new, or empty)")
    add_flag(parser, "overwrite", default=False, help="replace out_dir if it is not empty")
    parser.add_argument("--format", type=Literal["native", "onnx"], default="native",
                        help="native: a transformers folder; onnx: model.onnx + config + tokenizer (extra: lit_al[onnx])")
    return parser


def _predict_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Label new texts with a run's last model.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="a run directory written by lit_al fit")
    parser.add_argument("--input", type=str, required=True, help="texts to label (CSV, TSV, JSONL or Parquet)")
    parser.add_argument("--output", type=str, required=True, help="the predictions CSV to write")
    parser.add_argument("--text_column", type=str, default="text", help="column holding the text")
    parser.add_argument("--id_column", type=str | None, default=None,
                        help="column holding an id (default: 'id' if present, else row numbers)")
    parser.add_argument("--batch_size", type=int, default=64, help="texts per batch")
    add_flag(parser, "progress", default=True, help="show a progress bar")
    return parser


def _status_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Print where a run stands.", exit_on_error=False)
    parser.add_argument("run_dir", type=str, help="a run directory written by lit_al fit")
    return parser


def run_export(parser: ArgumentParser, cfg: Namespace) -> int:
    from .product.export import export_run

    exported = export_run(cfg.run_dir, cfg.out_dir, overwrite=cfg.overwrite, format=cfg.format)
    if exported.format == "onnx":
        print(f"exported the round-{exported.round} model of {cfg.run_dir} to {exported.directory / 'model.onnx'} "
              f"({exported.architecture} as ONNX; output: logits, checked against the model with onnxruntime)")
        print(f'  import onnxruntime; onnxruntime.InferenceSession("{exported.directory / "model.onnx"}")')
        return 0
    how = "trust_remote_code=True" if exported.trust_remote_code else "no remote code"
    print(f"exported the round-{exported.round} model of {cfg.run_dir} to {exported.directory} "
          f"({exported.architecture}; loads with {how})")
    print(f'  from transformers import pipeline; pipeline("text-classification", model="{exported.directory}"'
          + (", trust_remote_code=True" if exported.trust_remote_code else "") + ")")
    return 0


def run_predict(parser: ArgumentParser, cfg: Namespace) -> int:
    from .product.predict import predict_file

    table = predict_file(cfg.run_dir, cfg.input, cfg.output, text_column=cfg.text_column, id_column=cfg.id_column,
                         batch_size=cfg.batch_size, progress=cfg.progress)
    print(f"predictions for {len(table)} text(s): {cfg.output}")
    return 0


def run_status_verb(parser: ArgumentParser, cfg: Namespace) -> int:
    from .product.status import format_status, run_status

    print(format_status(run_status(cfg.run_dir)))
    return 0


def _headline_metrics(row: dict[str, Any]) -> list[str]:
    preferred = ["test_accuracy", "test_macro_f1", "test_micro_f1", "test_subset_accuracy",
                 "test_target_precision", "test_target_recall", "test_target_f1"]
    return [name for name in preferred if name in row]


@dataclass(frozen=True)
class Verb:
    help: str
    parser: Callable[[], ArgumentParser]
    run: Callable[[ArgumentParser, Namespace], int]


VERBS: dict[str, Verb] = {
    "fit": Verb("run an active-learning simulation (or continue one)", _fit_parser, run_fit),
    "query": Verb("train on what a person labeled and propose the next batch to label", _fit_parser, run_query),
    "label": Verb("import a person's answers to the pending batch", _label_parser, run_label),
    "status": Verb("print where a run stands", _status_parser, run_status_verb),
    "export": Verb("write a run's last model as a Hugging Face folder", _export_parser, run_export),
    "predict": Verb("label new texts with a run's last model", _predict_parser, run_predict),
    "annotate": Verb("serve a labeling page for the pending batch", _annotate_parser, run_annotate),
    "labelstudio": Verb("label in a live Label Studio project: push, pull, watch", _labelstudio_parser, run_labelstudio),
    "experiment": Verb("run a grid of simulations", _experiment_parser, run_experiment),
    "report": Verb("tables and figures of an experiment", _report_parser, run_report),
}


def top_level_help() -> str:
    lines = [f"usage: lit_al [-h] [--version] {{{','.join(VERBS)}}} ...", "",
             "Active learning for transformer text classifiers.", "", "commands:"]
    lines += [f"  {name:<12}{verb.help}" for name, verb in VERBS.items()]
    lines += ["", "lit_al COMMAND --help shows the options of a command."]
    return "\n".join(lines)


def build_parser() -> ArgumentParser:
    """Every verb's parser under one (slow: builds them all; ``main`` builds only the one used)."""
    parser = ArgumentParser(prog="lit_al", description="Active learning for transformer text classifiers.", exit_on_error=False)
    subcommands = parser.add_subcommands(required=True)
    for name, verb in VERBS.items():
        subcommands.add_subcommand(name, verb.parser(), help=verb.help)
    return parser


def _quiet_libraries() -> None:
    """Silence library chatter that says nothing to a lit_al user (the loop prints its own progress)."""
    from .quiet import quiet_libraries

    quiet_libraries()


#: Verbs that read a run's files and load no model library (``lit_al status`` and ``label`` answer in about a second).
LIGHT_VERBS = frozenset({"label", "status"})

#: Failures of the machine, not of lit_al: permission, read-only file system, disk or quota full.
_ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _raise_on_signal(signum: int, _frame: Any) -> None:
    # Lightning keeps a handler installed before its own and calls it after its notifier, so this
    # stops the run wherever the signal lands (fit, test, predict, selection) without a 0 exit.
    signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
    raise RunInterrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(top_level_help(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] == "--version":
        print(f"lit_al {__version__}")
        return 0
    verb = VERBS.get(args[0])
    if verb is None:
        print(f"lit_al: error: unknown command {args[0]!r}; choose one of {', '.join(VERBS)} (lit_al --help)", file=sys.stderr)
        return 2
    resume = _resume_value(args[1:])
    if args[0] == "query" and resume and not any(a.startswith("--overwrite") for a in args) \
            and said_no_labels_arrived(Path(resume)):  # at once: no parser, no Lightning to import
        return 0
    # the other ranks of a DDP run repeat rank 0's progress: only their warnings are news
    logging.basicConfig(level=logging.INFO if is_writer() else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args[0] not in LIGHT_VERBS:  # they load no model library: nothing to quiet, and transformers costs seconds
        _quiet_libraries()
    try:
        parser = verb.parser()
        parser.prog = f"lit_al {args[0]}"
        rest = _expand_builtin(_expand_resume(args[1:])) if args[0] in ("fit", "query") else args[1:]
        cfg = parser.parse_args(rest)
    except LitAlError as exc:
        print(f"lit_al: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # jsonargparse reports bad keys/values as exceptions with exit_on_error=False
        print(f"lit_al: error: {one_line(exc)}", file=sys.stderr)
        return 2
    handlers = {s: signal.signal(s, _raise_on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return verb.run(parser, cfg)
    except LitAlError as exc:
        print(f"lit_al: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lit_al: error: {where}{exc.strerror or exc} (errno {errno.errorcode.get(exc.errno, exc.errno)})", file=sys.stderr)
        return 1
    except RunInterrupted as exc:
        print(f"lit_al: interrupted by {signal.Signals(exc.signum).name}; {_resume_hint(args[0], cfg)}", file=sys.stderr)
        return 128 + exc.signum
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _resume_hint(verb: str, cfg: Namespace) -> str:
    if verb in ("fit", "query"):
        return f"the run is unfinished; continue it with: lit_al {verb} --resume {cfg.run_dir}"
    if verb == "experiment":
        return "re-run the same command to finish the unfinished cells"
    return "nothing was lost; run the command again"


def _resume_value(argv: list[str]) -> str | None:
    """The directory of ``--resume DIR`` (or ``--resume=DIR``) in ``argv``, if any."""
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg == "--resume" and i + 1 < len(argv) else arg.partition("=")[2] if arg.startswith("--resume=") else None
        if value:
            return value
    return None


def _expand_resume(argv: list[str]) -> list[str]:
    """``fit --resume DIR`` reads the run's saved ``DIR/config.yaml`` first (later arguments still apply)."""
    value = _resume_value(argv)
    if value:
        saved = Path(value) / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"--resume {value}: no config.yaml there (not a lit_al run)")
        return ["--config", str(saved), *argv]
    return argv


def _expand_builtin(argv: list[str]) -> list[str]:
    """``--config builtin:demo.yaml`` names a config shipped inside the package."""
    from .data.readers import builtin_root

    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg in ("-c", "--config") and out[i + 1].startswith(BUILTIN_PREFIX):
            name = out[i + 1][len(BUILTIN_PREFIX):]
            path = builtin_root().parent / "configs" / name
            if not path.is_file():
                shipped = sorted(p.name for p in path.parent.glob("*.yaml"))
                raise ConfigError(f"--config {out[i + 1]}: no such shipped config; shipped: {', '.join(shipped)}")
            out[i + 1] = str(path)
    return out


if __name__ == "__main__":
    sys.exit(main())
