#!/usr/bin/env python
"""The cost of a query round against its floor: one plain forward pass over the same rows, same run.

For every strategy (``--strategies``), one round of ``lit_al fit`` on the shipped TREC pool
(``--rows`` rows of it, seeded; or ``--pool`` another CSV such as AG News from
``../shared/data``) with the offline all-MiniLM-L6-v2: 100 random labels, a shared round-0
model (``loop.round0_model_dir``: trained once, loaded by every strategy), then one query of
50. From its ``metrics.csv``: ``predict_seconds`` (scoring the pool, every pass the strategy
needs) + ``select_seconds``. Right before and right after each strategy's run, in the process that
reports, one plain forward pass over the same unlabeled rows is timed (the mean is the floor; a
shared machine's load drifts): ``transformers.AutoModel`` + a linear
head + softmax, the same tokenizer and ``max_length``, rows sorted by length, batches of
``eval_batch_size`` padded to their longest row, ``torch.inference_mode``, the same thread
count. ``ratio = (predict + select) / plain``.

Targets (issue 11): ≤ 1.05 for least_confidence, margin, entropy; ≤ 1.3 for strategies that need
one pass (Core-Set, k-means, BADGE, CAL, DAL, perceptron ensemble, EGL head, BEAL deterministic,
MII); MC dropout with T passes ≤ 1.05·T (``mc_scope: full``) and ≤ 1.3 (``mc_scope: head``).

Scoring overhead (``--overhead-repeats``, default 3): ``PoolScorer.score`` of ``probs`` and the plain
pass over the same rows, interleaved in one process (no drift between separate runs), median ratio.

Fit throughput (``--fit``, default on): ``fit_seconds`` of a ``lit_al fit`` run without dev
set (training only) per labeled example per epoch, against a plain PyTorch training loop over the
same labeled rows (AdamW, the same learning rate, batch size and epochs, shuffled by a seeded
generator) with dynamic padding, and the same loop padded to ``max_length``.

Usage::

    python scripts/bench_round.py                                   # every strategy, the whole TREC pool
    python scripts/bench_round.py --rows 1000 --strategies entropy,coreset,mc_dropout
    python scripts/bench_round.py --pool ../shared/data/ag_news/train.csv --rows 5000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import command_line, emit, generated_by

REPO = Path(__file__).resolve().parents[1]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TREC = REPO / "lit_al" / "datasets" / "trec" / "train.csv"

#: label -> (strategy spec for the config, number of forward passes it needs, target on the ratio).
ONE_PASS_TARGET = 1.3
CASES: dict[str, tuple[dict, int, float | None]] = {
    "random": ({"name": "random"}, 0, None),
    "least_confidence": ({"name": "least_confidence"}, 1, 1.05),
    "margin": ({"name": "margin"}, 1, 1.05),
    "entropy": ({"name": "entropy"}, 1, 1.05),
    "coreset": ({"name": "coreset"}, 1, ONE_PASS_TARGET),
    "kmeans": ({"name": "kmeans"}, 1, ONE_PASS_TARGET),
    "badge": ({"name": "badge"}, 1, ONE_PASS_TARGET),
    "cal": ({"name": "cal"}, 1, ONE_PASS_TARGET),
    "dal": ({"name": "dal"}, 1, ONE_PASS_TARGET),
    "perceptron_ensemble": ({"name": "perceptron_ensemble"}, 1, ONE_PASS_TARGET),
    "egl_head": ({"name": "egl"}, 1, ONE_PASS_TARGET),
    "beal_deterministic": ({"name": "beal_deterministic"}, 1, ONE_PASS_TARGET),
    "mii": ({"name": "mii"}, 1, ONE_PASS_TARGET),
    "density_weighted": ({"name": "density_weighted"}, 1, None),
    "mc_dropout_full_T10": ({"name": "mc_dropout", "mc_passes": 10, "mc_scope": "full"}, 10, 1.05 * 10),
    "mc_dropout_head_T10": ({"name": "mc_dropout", "mc_passes": 10, "mc_scope": "head"}, 1, ONE_PASS_TARGET),
    "bald_full_T10": ({"name": "bald", "mc_passes": 10}, 10, None),
    "batch_bald_head_T20": ({"name": "batch_bald", "mc_scope": "head"}, 1, None),
    "beal_head_T100": ({"name": "beal", "mc_scope": "head"}, 1, None),
    "alden": ({"name": "alden"}, 1, None),
}
#: ALPS needs a masked-LM head, which the offline MiniLM does not have (README, "Strategies").
NOT_RUN = {"alps": "needs a masked-LM model; the offline all-MiniLM-L6-v2 has no MLM head"}


# ---------------------------------------------------------------- data and configs
def write_pool(path: Path, source: Path, rows: int | None, seed: int = 0) -> Path:
    """``rows`` rows of ``source`` (a seeded sample, file order kept), or all of it."""
    import pandas as pd

    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    if rows is not None and rows < len(frame):
        keep = np.sort(np.random.default_rng(seed).permutation(len(frame))[:rows])
        frame = frame.iloc[keep]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[["id", "text", "label"]].to_csv(path, index=False)
    return path


def fit_config(args, pool: Path, run_dir: Path, strategy: dict, *, rounds: int, round0_dir: Path | None,
               initial: int, epochs: int) -> dict:
    loop = {"query_size": 50, "rounds": rounds, "monitor": None}
    if round0_dir is not None:
        loop["round0_model_dir"] = str(round0_dir)
    return {
        "seed": 0, "run_dir": str(run_dir), "overwrite": True, "threads": args.threads,
        "model": {"model_name_or_path": MODEL, "lr": args.lr},
        "data": {"train": str(pool), "max_length": args.max_length, "batch_size": args.batch_size,
                 "eval_batch_size": args.eval_batch_size, "initial": {"scenario": "random", "n": initial}},
        "trainer": {"max_epochs": epochs, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
        "strategy": strategy,
        "loop": loop,
    }


def run_fit(config: dict, work: Path, name: str) -> dict:
    """``python -m lit_al.cli fit`` on ``config``; round 0's row of ``metrics.csv``."""
    import pandas as pd

    path = work / f"{name}.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-m", "lit_al.cli", "fit", "--config", str(path)],
                          cwd=str(REPO), env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
    return pd.read_csv(Path(config["run_dir"]) / "metrics.csv").iloc[0].to_dict()


def initial_rows(run_dir: Path) -> np.ndarray:
    records = json.loads((run_dir / "state.json").read_text())["records"]
    return np.array(sorted(r["pool_index"] for r in records if r["round"] == 0), dtype=np.int64)


# ---------------------------------------------------------------- the plain baselines
class Plain:
    """A plain transformers encoder + linear head, the floor a round is measured against."""

    def __init__(self, args, texts: list[str], labels: np.ndarray) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from lit_al.hub import resolve_model_path

        torch.set_num_threads(args.threads)
        path = resolve_model_path(MODEL)
        self.args = args
        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True)
        self.encoder = AutoModel.from_pretrained(path)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, int(labels.max()) + 1)
        self.ids = self.tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]
        self.labels = labels

    def _batch(self, rows, width=None):
        import torch

        width = width or max(len(self.ids[i]) for i in rows)
        input_ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, i in enumerate(rows):
            input_ids[j, : len(self.ids[i])] = torch.tensor(self.ids[i])
            mask[j, : len(self.ids[i])] = 1
        return input_ids, mask

    def forward_seconds(self, rows: np.ndarray, dropout: bool = False) -> float:
        """One pass over ``rows``: length-sorted, dynamic padding, ``inference_mode``; softmax probabilities out.

        ``dropout=True``: the same pass with the encoder's dropout on (train mode), i.e. one
        Monte-Carlo dropout sample: T of them are the floor of a T-pass ``mc_scope: full`` round.
        """
        import torch

        self.encoder.train(dropout)
        order = rows[np.argsort([-len(self.ids[i]) for i in rows], kind="stable")]
        start = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, order.size, self.args.eval_batch_size):
                input_ids, mask = self._batch(order[s : s + self.args.eval_batch_size])
                hidden = self.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state[:, 0]
                torch.softmax(self.head(hidden), dim=-1).numpy()
        return time.perf_counter() - start

    def train_seconds(self, rows: np.ndarray, epochs: int, pad_to_max: bool) -> float:
        """``epochs`` of AdamW over ``rows`` in shuffled batches (seeded), dynamic or max-length padding."""
        import torch

        params = list(self.encoder.parameters()) + list(self.head.parameters())
        optimizer = torch.optim.AdamW(params, lr=self.args.lr)
        generator = torch.Generator().manual_seed(0)
        targets = torch.as_tensor(self.labels)
        self.encoder.train()
        start = time.perf_counter()
        for _ in range(epochs):
            order = rows[torch.randperm(rows.size, generator=generator).numpy()]
            for s in range(0, order.size, self.args.batch_size):
                batch = order[s : s + self.args.batch_size]
                input_ids, mask = self._batch(batch, self.args.max_length if pad_to_max else None)
                hidden = self.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state[:, 0]
                loss = torch.nn.functional.cross_entropy(self.head(hidden), targets[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return time.perf_counter() - start


# ---------------------------------------------------------------- parent
def run(args) -> dict:
    import pandas as pd

    labels_missing = [c for c in args.strategies if c not in CASES and c not in NOT_RUN]
    if labels_missing:
        raise SystemExit(f"--strategies: unknown {labels_missing}; known: {sorted(CASES)}")
    report: dict = {"rounds": [], "fit": None, "load_1min": [os.getloadavg()[0]]}
    with tempfile.TemporaryDirectory(prefix="bench_round_") as tmp:
        work = Path(tmp)
        pool = write_pool(work / "pool.csv", Path(args.pool), args.rows)
        frame = pd.read_csv(pool, dtype=str, keep_default_na=False)
        names = sorted(set(frame["label"]))
        labels = np.array([names.index(x) for x in frame["label"]])
        report["pool"] = {"source": str(args.pool), "rows": len(frame)}
        plain = Plain(args, frame["text"].tolist(), labels)
        round0 = work / "round0"
        unlabeled = None
        for label in args.strategies:
            if label in NOT_RUN:
                report["rounds"].append({"strategy": label, "error": NOT_RUN[label]})
                continue
            spec, passes, target = CASES[label]
            config = fit_config(args, pool, work / "runs" / label.replace(" ", "_"), spec, rounds=1,
                                round0_dir=round0, initial=100, epochs=args.epochs)
            if unlabeled is None:  # the first run trains the shared round-0 model; its rows fix U
                row = run_fit(config, work, "first")
                if "error" in row:
                    raise SystemExit(f"lit_al fit failed: {row['error']}")
                unlabeled = np.setdiff1d(np.arange(len(frame)), initial_rows(Path(config["run_dir"])))
            # T passes with dropout on are the floor of a full-model MC round: timed around it too
            dropout = passes > 1
            before = plain.forward_seconds(unlabeled)
            dropout_before = plain.forward_seconds(unlabeled, dropout=True) if dropout else None
            row = run_fit(config, work, label.replace(" ", "_"))
            dropout_after = plain.forward_seconds(unlabeled, dropout=True) if dropout else None
            after = plain.forward_seconds(unlabeled)
            plain_seconds = (before + after) / 2
            entry = {"strategy": label, "passes": passes, "target": target, "plain_seconds": plain_seconds,
                     "plain_before_after": [before, after], "unlabeled": int(unlabeled.size)}
            if dropout:
                entry["dropout_pass_seconds"] = (dropout_before + dropout_after) / 2
                entry["dropout_before_after"] = [dropout_before, dropout_after]
            if "error" in row:
                entry["error"] = row["error"]
            else:
                entry.update(predict_seconds=float(row.get("predict_seconds", 0.0)),
                             select_seconds=float(row.get("select_seconds", 0.0)))
                entry["ratio"] = (entry["predict_seconds"] + entry["select_seconds"]) / plain_seconds
                if "dropout_pass_seconds" in entry:
                    entry["ratio_to_dropout_passes"] = (entry["predict_seconds"] + entry["select_seconds"]) / (
                        passes * entry["dropout_pass_seconds"])
            report["rounds"].append(entry)
            report["load_1min"].append(os.getloadavg()[0])
            print(json.dumps(entry), flush=True)
        if args.overhead_repeats > 0:
            rows = unlabeled if unlabeled is not None else np.arange(len(frame))
            report["overhead"] = scoring_overhead(args, work, pool, plain, rows)
            report["load_1min"].append(os.getloadavg()[0])
        if args.fit:
            report["fit"] = fit_throughput(args, work, pool, plain, len(frame))
            report["load_1min"].append(os.getloadavg()[0])
    return report


def scoring_overhead(args, work: Path, pool: Path, plain: Plain, rows: np.ndarray) -> dict:
    """lit_al's pool scoring (``PoolScorer``, Lightning's predict loop, the output store) against the plain pass.

    In this process, interleaved ``--overhead-repeats`` times after one untimed call of each:
    the ``probs`` pass of least confidence, margin and entropy, over the same rows with the
    same encoder weights, tokenizer, ``max_length``, batch size and thread count. Interleaving
    in one process takes out the drift between separate runs that the round table has to live with.
    """
    import lightning.pytorch as pl

    from lit_al.data.module import ActiveDataModule
    from lit_al.model import TextClassifier
    from lit_al.outputs.catalog import PredictionRequest
    from lit_al.scoring import PoolScorer

    data = ActiveDataModule(train=str(pool), max_length=args.max_length, eval_batch_size=args.eval_batch_size)
    data.load()
    data.tokenize(plain.tokenizer, cache_dir=work / "overhead_cache")
    model = TextClassifier(plain.path, **data.task_info()).eval()

    def trainer(directory, callbacks, overrides=None):
        return pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
                          default_root_dir=str(directory), **{k: v for k, v in (overrides or {}).items() if k != "logger"})

    scorer, request = PoolScorer(trainer), PredictionRequest(frozenset({"probs"}))
    times: dict[str, list[float]] = {"plain": [], "lit_al": []}
    for repeat in range(args.overhead_repeats + 1):
        plain_seconds = plain.forward_seconds(rows)
        lit_al_seconds = scorer.score(model, data, request, rows, work / "overhead" / str(repeat)).seconds
        if repeat:  # the first of each is a warm-up
            times["plain"].append(plain_seconds)
            times["lit_al"].append(lit_al_seconds)
    ratios = [a / b for a, b in zip(times["lit_al"], times["plain"])]
    return {"rows": int(rows.size), "seconds": times, "ratios": ratios, "median_ratio": float(np.median(ratios))}


def fit_throughput(args, work: Path, pool: Path, plain: Plain, n: int) -> dict:
    """lit_al's training seconds per labeled example per epoch against the plain loops, same rows."""
    config = fit_config(args, pool, work / "runs" / "fit", {"name": "random"}, rounds=0, round0_dir=None,
                        initial=args.fit_labels, epochs=args.epochs)
    row = run_fit(config, work, "fit")
    if "error" in row:
        return {"error": row["error"]}
    rows = initial_rows(Path(config["run_dir"]))
    per = rows.size * args.epochs
    ours = float(row["fit_seconds"]) / per
    dynamic = plain.train_seconds(rows, args.epochs, pad_to_max=False) / per
    padded = plain.train_seconds(rows, args.epochs, pad_to_max=True) / per
    return {"labeled": int(rows.size), "epochs": args.epochs, "lit_al": ours, "plain_dynamic": dynamic,
            "plain_max_length": padded, "throughput_vs_dynamic": dynamic / ours, "throughput_vs_max_length": padded / ours}


def to_markdown(report: dict, command: str, args) -> str:
    load = report["load_1min"]
    lines = [
        "# The cost of a query round against one plain forward pass",
        "",
        generated_by(command, "torch", "transformers")
        + f"; {args.threads} thread(s) on both sides. Load average (1 min): {load[0]:.2f} at start, {max(load):.2f} at most, "
        f"{load[-1]:.2f} at the end. The plain pass is timed right before and right after each strategy's round and "
        "`plain s` is their mean (both in the JSON): the machine's speed drifts.",
        "",
        f"Pool: {report['pool']['rows']} rows of `{Path(report['pool']['source']).name}`, all-MiniLM-L6-v2 (offline), "
        f"max_length {args.max_length}, eval batch {args.eval_batch_size}, 100 initial random labels, query 50. "
        "`ratio` = (predict + select seconds of the lit_al round) / seconds of the plain pass over the same unlabeled rows.",
        "",
        "| strategy | passes | plain s | predict s | select s | ratio | target | meets |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for entry in report["rounds"]:
        if "ratio" not in entry:
            lines.append(f"| {entry['strategy']} | | | | | not run: {entry.get('error', '')} | | |")
            continue
        target = entry["target"]
        meets = "—" if target is None else ("yes" if entry["ratio"] <= target else "no")
        lines.append(f"| {entry['strategy']} | {entry['passes']} | {entry['plain_seconds']:.2f} | {entry['predict_seconds']:.2f} | "
                     f"{entry['select_seconds']:.3f} | {entry['ratio']:.2f} | {'—' if target is None else f'≤ {target:.2f}'} | {meets} |")
    mc = [e for e in report["rounds"] if "ratio_to_dropout_passes" in e]
    if mc:
        lines += ["", "Rounds of T full-model dropout passes against T plain passes with the encoder's dropout on "
                  "(`dropout pass s`: one such pass, the mean of one right before and one right after the round): what dropout itself costs is in the floor.",
                  "", "| strategy | T | plain s | dropout pass s | dropout pass / plain | predict + select / (T · dropout pass) |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {e['strategy']} | {e['passes']} | {e['plain_seconds']:.2f} | {e['dropout_pass_seconds']:.2f} | "
                  f"{e['dropout_pass_seconds'] / e['plain_seconds']:.3f} | {e['ratio_to_dropout_passes']:.3f} |" for e in mc]
    overhead = report.get("overhead")
    if overhead:
        pairs = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(overhead["seconds"]["lit_al"], overhead["seconds"]["plain"]))
        lines += ["", "## Scoring overhead, interleaved in one process", "",
                  f"lit_al's pool scoring of `probs` (`PoolScorer.score`: a Lightning predict loop and the output store) "
                  f"over the same {overhead['rows']} rows as the plain pass, the two alternating in one process after a "
                  f"warm-up each: lit_al/plain seconds {pairs}; ratios "
                  f"{', '.join(f'{r:.3f}' for r in overhead['ratios'])}, median **{overhead['median_ratio']:.3f}**."]
    fit = report.get("fit")
    if fit:
        lines += ["", "## Fit throughput", ""]
        if "error" in fit:
            lines.append(f"Failed: {fit['error']}")
        else:
            lines += [
                f"{fit['labeled']} labeled rows, {fit['epochs']} epoch(s), batch {args.batch_size}, no dev set "
                "(`fit_seconds` is training only). Seconds per labeled example per epoch; throughput = plain / lit_al "
                "(≥ 1 means lit_al trains at least as fast).",
                "",
                "| loop | s / example / epoch | lit_al throughput relative to it |",
                "|---|---:|---:|",
                f"| lit_al (`fit_seconds`) | {fit['lit_al'] * 1000:.1f} ms | — |",
                f"| plain PyTorch, dynamic padding | {fit['plain_dynamic'] * 1000:.1f} ms | {fit['throughput_vs_dynamic']:.2f}× |",
                f"| plain PyTorch, padded to max_length | {fit['plain_max_length'] * 1000:.1f} ms | {fit['throughput_vs_max_length']:.2f}× |",
            ]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", type=lambda s: s.split(","), default=[*CASES, *NOT_RUN])
    parser.add_argument("--pool", default=str(TREC), help="a CSV with id, text, label (default: the shipped TREC pool)")
    parser.add_argument("--rows", type=int, default=None, help="a seeded sample of this many pool rows")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--fit-labels", type=int, default=400, help="labeled rows of the fit-throughput run")
    parser.add_argument("--fit", type=lambda s: s.lower() in ("1", "true", "yes"), default=True)
    parser.add_argument("--overhead-repeats", type=int, default=3,
                        help="interleaved in-process scoring-vs-plain passes (0: skip)")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report = run(args)
    emit(to_markdown(report, command_line("bench_round.py", argv), args), report, args.output, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
