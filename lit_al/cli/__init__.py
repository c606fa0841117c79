"""The ``lit_al`` command line: a router from a verb to its module (one module per verb, as litgpt does).

``lit_al fit --config configs/demo.yaml`` runs an active-learning simulation;
``lit_al experiment --config GRID.yaml`` runs a grid of them and
``lit_al report EXPERIMENT_DIR`` writes its tables and figures.
Every option can come from the YAML file or the command line
(``--model.lr 3e-5``, ``--data.batch_size 16``, ``--trainer.max_epochs 3``,
``--strategy margin``, ``--loop.query_size 25``); unknown keys are errors;
``--print_config`` prints the resolved configuration. A yes/no option given alone
(``--overwrite``, ``--loop.keep_outputs``) means yes, wherever it stands (``lit_al.cli.flags``).

Each verb is a module of this package with ``parser()`` (jsonargparse) and ``run(parser, cfg)``;
it may also define ``prepare(argv)`` (rewrite its arguments before parsing), ``yes_no_options()``
(yes/no options its parser cannot list), ``answer_early(argv)`` (answer without a parser), ``LIGHT = True`` (it loads no model library)
and ``interrupted(cfg)`` (what to say when a signal stops it). Only the module of the verb given
is imported, so ``lit_al --help`` and ``lit_al --version`` import neither jsonargparse nor Lightning.
"""

from __future__ import annotations

import errno
import importlib
import logging
import signal
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Sequence

from .. import __version__
from ..errors import LitAlError, RunInterrupted, one_line

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace

log = logging.getLogger("lit_al")


@dataclass(frozen=True)
class Verb:
    """One command: its one-line help (for ``lit_al --help``) and the module that parses and runs it."""

    help: str
    module: str

    def load(self) -> ModuleType:
        return importlib.import_module(f"{__name__}.{self.module}")

    def parser(self) -> ArgumentParser:
        return self.load().parser()

    def run(self, parser: ArgumentParser, cfg: Namespace) -> int:
        return self.load().run(parser, cfg)


VERBS: dict[str, Verb] = {
    "fit": Verb("run an active-learning simulation (or continue one)", "fit"),
    "query": Verb("train on what a person labeled and propose the next batch to label", "query"),
    "label": Verb("import a person's answers to the pending batch", "label"),
    "status": Verb("print where a run stands", "status"),
    "export": Verb("write a run's last model as a Hugging Face folder", "export"),
    "predict": Verb("label new texts with a run's last model", "predict"),
    "annotate": Verb("serve a labeling page for the pending batch", "annotate"),
    "labelstudio": Verb("label in a live Label Studio project: push, pull, watch", "labelstudio"),
    "experiment": Verb("run a grid of simulations", "experiment"),
    "report": Verb("tables and figures of an experiment", "report"),
}

#: Failures of the machine, not of lit_al: permission, read-only file system, disk or quota full.
_ENVIRONMENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def top_level_help() -> str:
    lines = [f"usage: lit_al [-h] [--version] {{{','.join(VERBS)}}} ...", "",
             "Active learning for transformer text classifiers.", "", "commands:"]
    lines += [f"  {name:<12}{verb.help}" for name, verb in VERBS.items()]
    lines += ["", "lit_al COMMAND --help shows the options of a command."]
    return "\n".join(lines)


def _raise_on_signal(signum: int, _frame: Any) -> None:
    # Lightning keeps a handler installed before its own and calls it after its notifier, so this
    # stops the run wherever the signal lands (fit, test, predict, selection) without a 0 exit.
    signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
    raise RunInterrupted(signum)


def _parse(name: str, module: ModuleType, args: list[str]) -> tuple[ArgumentParser, Namespace]:
    """The verb's parser and its reading of ``args`` (after the verb's own rewriting and the bare yes/no flags)."""
    from .flags import with_bare_flags

    parser = module.parser()
    parser.prog = f"lit_al {name}"
    prepare, more_flags = getattr(module, "prepare", None), getattr(module, "yes_no_options", None)
    rest = prepare(args) if prepare else args
    return parser, parser.parse_args(with_bare_flags(parser, rest, also=more_flags() if more_flags else ()))


def _run(name: str, module: ModuleType, parser: ArgumentParser, cfg: Namespace) -> int:
    """Run the verb; lit_al's errors, a full disk and a signal end it with one line and an exit code."""
    handlers = {s: signal.signal(s, _raise_on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = module.run(parser, cfg)
        if code == 0:
            from ..distributed import end_group

            end_group()
        return code
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
        interrupted = getattr(module, "interrupted", None)
        hint = interrupted(cfg) if interrupted else "nothing was lost; run the command again"
        print(f"lit_al: interrupted by {signal.Signals(exc.signum).name}; {hint}", file=sys.stderr)
        return 128 + exc.signum
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(top_level_help(), file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    if args[0] == "--version":
        print(f"lit_al {__version__}")
        return 0
    name, rest = args[0], args[1:]
    verb = VERBS.get(name)
    if verb is None:
        print(f"lit_al: error: unknown command {name!r}; choose one of {', '.join(VERBS)} (lit_al --help)", file=sys.stderr)
        return 2
    module = verb.load()
    answer_early = getattr(module, "answer_early", None)
    early = answer_early(rest) if answer_early else None
    if early is not None:
        return early
    from ..distributed import is_writer

    # the other ranks of a DDP run repeat rank 0's progress: only their warnings are news
    logging.basicConfig(level=logging.INFO if is_writer() else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(module, "LIGHT", False):  # a light verb loads no model library: nothing to quiet, and transformers costs seconds
        from ..quiet import quiet_libraries

        quiet_libraries()
    try:
        parser, cfg = _parse(name, module, rest)
    except LitAlError as exc:
        print(f"lit_al: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # jsonargparse reports bad keys/values as exceptions with exit_on_error=False
        print(f"lit_al: error: {one_line(exc)}", file=sys.stderr)
        return 2
    return _run(name, module, parser, cfg)
