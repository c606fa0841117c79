"""The ``lit_al labelstudio push|pull|watch RUN`` command: its parser and what each subcommand runs."""

from __future__ import annotations

import time
from pathlib import Path

from jsonargparse import ArgumentParser, Namespace

from ...config import add_flag

from .connection import KEY_VARIABLE, URL_VARIABLE, connection_from

SUBCOMMANDS = {
    "push": "import the run's pending batch into its Label Studio project (created if needed); adds only missing tasks",
    "pull": "import the answers given in Label Studio to the pending batch (validated, atomic, as lit_al label)",
    "watch": "poll the project; import answers as they arrive and train in the background (loop.overlap.enabled), "
             "or pull a finished batch and train; push the next batch",
}


def parser() -> ArgumentParser:
    root = ArgumentParser(description="A live Label Studio project as the labeling front end of a run "
                                      f"(server: {URL_VARIABLE}, key: {KEY_VARIABLE}).", exit_on_error=False)
    subcommands = root.add_subcommands(required=True)
    for name, text in SUBCOMMANDS.items():
        sub = ArgumentParser(description=text, exit_on_error=False)
        sub.add_argument("run_dir", type=str, help="the run directory (lit_al query made it)")
        sub.add_argument("--url", type=str | None, default=None,
                         help=f"the Label Studio server (default: ${URL_VARIABLE}, else http://localhost:8080)")
        sub.add_argument("--api_key", type=str | None, default=None,
                         help=f"the API key (default: ${KEY_VARIABLE}; prefer the variable: options show in ps)")
        if name in ("push", "watch"):
            sub.add_argument("--project", type=int | None, default=None,
                             help="label in this existing project (its config must be lit_al's) instead of a new one")
            sub.add_argument("--title", type=str | None, default=None, help="the new project's title (default: lit_al RUN_NAME)")
        if name in ("pull", "watch"):
            add_flag(sub, "overwrite", default=False,
                     help="let an answer changed in Label Studio correct the label imported before")
        if name == "watch":
            sub.add_argument("--interval", type=float, default=10.0, help="seconds between two looks at the project")
            sub.add_argument("--rounds", type=int | None, default=None,
                             help="stop after training this many rounds (default: until the run's budget is spent)")
        subcommands.add_subcommand(name, sub, help=text)
    return root


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {line}", flush=True)


def run(parser: ArgumentParser, cfg: Namespace) -> int:
    from .sync import pull, push

    name = cfg.subcommand
    args = cfg[name]
    run_dir = Path(args.run_dir)
    connection = connection_from(args.url, args.api_key)
    if name == "push":
        print(push(run_dir, connection, title=args.title, project=args.project).line(connection.shown_url))
    elif name == "pull":
        result = pull(run_dir, connection, overwrite=args.overwrite)
        print(result.line())
        if result.summary is not None and (result.summary.added or result.summary.skipped):
            print(f"next: lit_al query --resume {run_dir}   (or lit_al labelstudio watch {run_dir})")
    else:
        from .watch import watch

        result = watch(run_dir, connection, interval=args.interval, rounds=args.rounds, title=args.title,
                       project=args.project, overwrite=args.overwrite, say=_say)
        _say(f"stopped: {result.reason}; {result.rounds} round(s) trained")
    return 0
