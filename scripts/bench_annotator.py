"""The annotator's wait: a simulated person labels TREC through the labeling page's HTTP API, overlapped vs synchronous.

For each seed, the same run is labeled twice: once with ``loop.overlap.enabled: true`` (the
next batch is trained for in the background while the person answers) and once with the
synchronous page (the person asks for the next round and waits for it). The person answers
from TREC's gold labels at a fixed pace through ``lit_al annotate``'s JSON API (the page's own
requests), and the script reports, per batch, the seconds from the last answer of a batch to
the first item of the next one, and the learning curve (test accuracy and macro-F1 at each
labeled count) of both loops, with the paired difference over seeds.

The learning curve of the overlapped loop is read from ``overlap/models.csv``: the first
background model of each batch trains on exactly the committed labels with the round's seeds,
as the synchronous round does, so the two differ only by which texts each loop asked for.

    python scripts/bench_annotator.py --seeds 0 1 2 --batches 5 --query_size 25 --pace 4 \\
        --out docs/benchmarks/annotator.md
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from bench_common import command_line, emit, generated_by

ROOT = Path(__file__).resolve().parents[1]
TREC = ROOT / "lit_al" / "datasets" / "trec"
MODES = ("overlap", "sync")


@dataclass
class RunResult:
    """One labeling session: the seconds waited before each next batch and the learning curve."""

    seed: int
    mode: str
    waits: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)  # the answer request's round trip (the page's responsiveness)
    curve: dict[int, dict[str, float]] = field(default_factory=dict)  # labeled count -> test metrics
    proposed_by: dict[str, dict] = field(default_factory=dict)


def gold_labels() -> dict[str, str]:
    with open(TREC / "train.csv", encoding="utf-8", newline="") as handle:
        return {row["id"]: row["label"] for row in csv.DictReader(handle)}


def write_seed_labels(path: Path, gold: dict[str, str], n: int, seed: int) -> Path:
    """``n`` random pool texts with their gold labels: the labels a person starts with (``data.initial.labels_file``)."""
    ids = sorted(gold)
    picked = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label"])
        writer.writerows([ids[i], gold[ids[i]]] for i in sorted(picked))
    return path


def write_config(directory: Path, seed: int, mode: str, args: argparse.Namespace, seeds_file: Path) -> Path:
    overlap = {"enabled": mode == "overlap", "warm_start": args.warm_start, "max_epochs": args.intermediate_epochs,
               "retrain_every": args.retrain_every}
    config = {
        "seed": seed, "run_dir": str(directory / "run"),
        "model": {"model_name_or_path": args.model, "lr": 1e-4, "weight_decay": 0.01,
                  "warmup_ratio": 0.1},
        "data": {"train": "builtin:trec/unlabeled.csv", "test": "builtin:trec/test.csv", "max_length": 64,
                 "batch_size": 16, "eval_batch_size": 256, "pool_subsample": args.pool_subsample,
                 "initial": {"scenario": "none", "labels_file": str(seeds_file)}},
        "trainer": {"max_epochs": args.max_epochs, "accelerator": "cpu", "devices": 1, "gradient_clip_val": 1.0,
                    "enable_progress_bar": False},
        "strategy": args.strategy,
        "loop": {"query_size": args.query_size, "rounds": None, "oracle": "person",
                 "stop_set_size": args.stop_set_size, "overlap": overlap},
    }
    path = directory / "config.yaml"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Page:
    """The labeling page's JSON API, as ``static/app.js`` calls it (with the page's secret from its HTML)."""

    def __init__(self, base: str, client: str = "bench") -> None:
        self.base = base
        self.client = client
        self.secret = ""

    def open(self) -> None:
        """Load the page, as a browser does: its HTML carries the secret every POST must send."""
        with urllib.request.urlopen(self.base + "/", timeout=600) as response:
            found = re.search(r'<meta name="lit-al-page" content="([^"]+)">', response.read().decode())
        self.secret = found.group(1) if found else ""

    def _call(self, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data,
                                         headers={"Content-Type": "application/json", "X-Lit-Al-Page": self.secret})
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())

    def item(self) -> dict:
        """Take the next item (what the page does on load)."""
        return self._call("/api/take", {"client": self.client, "annotator": "bench"})

    def answer(self, example_id: str, label: str) -> dict:
        return self._call("/api/answer", {"client": self.client, "id": example_id, "labels": [label], "annotator": "bench"})

    def start_round(self) -> dict:
        return self._call("/api/round", {})


def _wait_for_server(page: Page, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return page.open()
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the labeling page did not start") from None
            time.sleep(0.5)


def label_batches(page: Page, gold: dict[str, str], batches: int, pace: float, result: RunResult) -> None:
    """Answer ``batches`` batches at ``pace`` seconds per text; after each, wait for the next batch's first item."""
    view = page.item()
    for k in range(batches):
        batch_round = view.get("round")
        last_sent = time.monotonic()
        while view["mode"] == "item" and view.get("round") == batch_round:
            time.sleep(pace)
            last_sent = time.monotonic()
            view = page.answer(view["item"]["id"], gold[view["item"]["id"]])
            result.answer_ms.append(1000 * (time.monotonic() - last_sent))
        if view["mode"] == "batch_done":  # the synchronous page (or a failed background training): ask for the round
            page.start_round()
        while view["mode"] != "item" or view.get("round") == batch_round:
            if view["mode"] == "finished":
                raise RuntimeError("the run finished before the benchmark's batches were labeled")
            time.sleep(0.25)
            view = page.item()
        result.waits.append(time.monotonic() - last_sent)
        print(f"  {result.mode} seed {result.seed}: batch {k} labeled; waited {result.waits[-1]:.1f} s for the next",
              flush=True)


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def learning_curve(run_dir: Path, mode: str) -> dict[int, dict[str, float]]:
    """Test metrics by labeled count: the rounds' models (synchronous), or each batch's first background model."""
    if mode == "sync":
        rows = _read_csv(run_dir / "metrics.csv")
    else:
        rows = [row for row in _read_csv(run_dir / "overlap" / "models.csv") if row["answers"] == "0"]
    curve: dict[int, dict[str, float]] = {}
    for row in rows:
        metrics = {k: float(v) for k, v in row.items() if k in ("test_accuracy", "test_macro_f1") and v}
        if metrics:
            curve[int(float(row["labeled"]))] = metrics
    return curve


def _last_model_done(page: Page, run_dir: Path, labeled: int, timeout: float) -> None:
    """Wait for the overlapped loop's model on every label (the last point of its curve; nobody waits for it).

    The page's requests are what record a finished background model in ``overlap/models.csv``, so it is asked.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.item()
        if any(int(row["labeled"]) == labeled and row["answers"] == "0"
               for row in _read_csv(run_dir / "overlap" / "models.csv")):
            return
        time.sleep(1)


def run_one(work: Path, seed: int, mode: str, args: argparse.Namespace, gold: dict[str, str]) -> RunResult:
    directory = work / f"seed{seed}_{mode}"
    seeds_file = write_seed_labels(work / f"seed{seed}_labels.csv", gold, args.initial, seed)
    config = write_config(directory, seed, mode, args, seeds_file)
    run_dir = directory / "run"
    subprocess.run([sys.executable, "-m", "lit_al.cli", "query", "--config", str(config), "--overwrite", "true"],
                   check=True, env=_env(), stdout=subprocess.DEVNULL)
    port = _free_port()
    log = open(directory / "server.log", "w", encoding="utf-8")
    server = subprocess.Popen([sys.executable, "-m", "lit_al.cli", "annotate", str(run_dir), "--port", str(port)],
                              env=_env(), stdout=log, stderr=subprocess.STDOUT)
    result = RunResult(seed, mode)
    try:
        page = Page(f"http://127.0.0.1:{port}")
        _wait_for_server(page, server)
        label_batches(page, gold, args.batches, args.pace, result)
        if mode == "overlap":
            _last_model_done(page, run_dir, args.initial + args.batches * args.query_size, timeout=1800)
    finally:
        server.terminate()
        server.wait(timeout=120)
        log.close()
    result.curve = learning_curve(run_dir, mode)
    result.proposed_by = json.loads((run_dir / "state.json").read_text(encoding="utf-8")).get("proposed_by", {})
    return result


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def report(results: list[RunResult], args: argparse.Namespace, command: str) -> str:
    seeds = sorted({r.seed for r in results})
    by = {(r.seed, r.mode): r for r in results}
    lines = ["# The annotator's wait: overlapped vs synchronous labeling page", "",
             generated_by(command, "torch", "lightning", "transformers"), "",
             f"TREC-6 pool ({args.model}), {args.initial} seed labels, batches of {args.query_size}, strategy "
             f"{args.strategy}, {args.max_epochs} epochs, a simulated person answering every {args.pace:g} s through "
             f"the page's HTTP API; seeds {seeds}. Overlap options: warm_start={args.warm_start}, "
             f"intermediate max_epochs={args.intermediate_epochs}, retrain_every={args.retrain_every}, "
             f"data.pool_subsample={args.pool_subsample}.", "",
             "## Seconds the person waited for the next batch (last answer sent → first item of the next batch)", "",
             "| seed | batch | overlapped | synchronous |", "|---:|---:|---:|---:|"]
    for seed in seeds:
        overlap, sync = by.get((seed, "overlap")), by.get((seed, "sync"))
        for k in range(args.batches):
            cells = [f"{r.waits[k]:.1f}" if r is not None and k < len(r.waits) else "—" for r in (overlap, sync)]
            lines.append(f"| {seed} | {k} | {cells[0]} | {cells[1]} |")
    lines += ["", "| | overlapped | synchronous |", "|---|---:|---:|"]
    for name, pick in (("median wait (s)", lambda r: r.waits), ("median answer round trip (ms)", lambda r: r.answer_ms)):
        cells = []
        for mode in MODES:
            values = [v for r in results if r.mode == mode for v in pick(r)]
            cells.append(f"{statistics.median(values):.1f}" if values else "—")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    lines += ["", "## Learning curve (test set; mean ± sd over seeds; paired difference overlapped − synchronous)", "",
              "| labeled | accuracy sync | accuracy overlap | Δ accuracy | macro-F1 sync | macro-F1 overlap | Δ macro-F1 |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    counts = sorted({n for r in results for n in r.curve})
    for n in counts:
        cells = []
        for metric in ("test_accuracy", "test_macro_f1"):
            sync = [by[(s, "sync")].curve[n][metric] for s in seeds if (s, "sync") in by and n in by[(s, "sync")].curve]
            over = [by[(s, "overlap")].curve[n][metric] for s in seeds
                    if (s, "overlap") in by and n in by[(s, "overlap")].curve]
            diff = [by[(s, "overlap")].curve[n][metric] - by[(s, "sync")].curve[n][metric] for s in seeds
                    if (s, "overlap") in by and (s, "sync") in by and n in by[(s, "overlap")].curve
                    and n in by[(s, "sync")].curve]
            cells += [_mean_sd(sync), _mean_sd(over), _mean_sd(diff) + (f" (n={len(diff)})" if diff else "")]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "## Which model proposed each batch (overlapped; state.json `proposed_by`)", "",
              "| seed | batch round | model's round | labels it saw | answers of the batch then pending |",
              "|---:|---:|---:|---:|---:|"]
    for seed in seeds:
        result = by.get((seed, "overlap"))
        for batch_round, info in sorted((result.proposed_by if result else {}).items(), key=lambda kv: int(kv[0])):
            if info.get("overlap"):
                lines.append(f"| {seed} | {batch_round} | {info['round']} | {info['labeled']} | {info.get('answers', 0)} |")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=5, help="batches the person labels per run")
    parser.add_argument("--query_size", type=int, default=25)
    parser.add_argument("--initial", type=int, default=50, help="seed labels the person starts with (random, gold)")
    parser.add_argument("--pace", type=float, default=4.0, help="seconds the person takes per text")
    parser.add_argument("--max_epochs", type=int, default=8)
    parser.add_argument("--strategy", default="entropy")
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2",
                        help="a model name or folder (the offline MiniLM by default)")
    parser.add_argument("--stop_set_size", type=int, default=2000)
    parser.add_argument("--pool_subsample", type=int, default=None, help="data.pool_subsample (both loops)")
    parser.add_argument("--warm_start", action="store_true", help="loop.overlap.warm_start")
    parser.add_argument("--intermediate_epochs", type=int, default=None, help="loop.overlap.max_epochs")
    parser.add_argument("--retrain_every", type=int, default=None, help="loop.overlap.retrain_every")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--work_dir", type=Path, default=ROOT / "runs" / "bench_annotator")
    parser.add_argument("--out", type=Path, default=None, help="the Markdown report (and a .json beside it)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    gold = gold_labels()
    results = []
    for seed in args.seeds:
        for mode in args.modes:  # interleaved, so that a slower machine later on hurts both loops alike
            print(f"seed {seed}, {mode} loop", flush=True)
            results.append(run_one(args.work_dir, seed, mode, args, gold))
    text = report(results, args, command_line("bench_annotator.py", argv))
    raw = {"args": {k: str(v) for k, v in vars(args).items()}, "results": [asdict(r) for r in results]}
    emit(text, raw, args.out, args.out.with_suffix(".json") if args.out else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
