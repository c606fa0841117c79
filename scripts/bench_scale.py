#!/usr/bin/env python
"""lit_al at 10^6 pool rows: selection over arrays read from disk, and one full ``lit_al fit`` round.

Part 1, selection (``--n`` rows, default 10^6; d = 384, C = 10, 100 labeled rows). Embeddings
and probabilities are written once, in chunks, as ``.npy`` files and opened read-only with
``np.load(mmap_mode="r")``, so the inputs are file-backed pages, not a heap copy. Each case
runs in a fresh subprocess and reports seconds and the process's peak RSS (``VmHWM`` at the
end; mapped file pages that were read count) divided by the bytes of the embedding matrix
(n · 384 · 4; the target is ≤ 2):

- Core-Set k = 1000, k-means k = 100, BADGE k = 100, entropy k = 100
  (``get_strategy(name).select``);
- ``density_weighted`` with K = 10 and ``index: auto`` (FAISS IVF above 20,000 rows), and
  ``representativeness`` (Rep(B), K = 10) of a 100-row batch;
- the recall@10 of the approximate neighbour lists against the exact ones, on a seeded sample
  of ``--recall-sample`` query rows (``lit_al.index.knn_search``, same seed as the strategy).

Part 2, one round of ``lit_al fit`` (``--fit-n`` rows, default ``--n``) on a synthetic text
pool (3 classes, 5–12 words per text from the tiny test vocabulary) with the tiny random BERT
of ``tests/tiny.py`` (2 layers, hidden 32): read → tokenize → fit on 100 labels → score the
whole pool → select 100 by entropy → write the state. Reports the child's peak RSS
(``os.wait4``'s rusage of that process) and the ``metrics.csv`` timing columns; "read, tokenize,
state" is the wall time minus the columns.

Usage::

    python scripts/bench_scale.py                                  # 10^6 rows
    python scripts/bench_scale.py --n 100000 --fit-n 100000
    python scripts/bench_scale.py --n 20000 --skip-fit --output /tmp/scale.md
"""

from __future__ import annotations

import argparse
import importlib.util
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
D, C, N_LABELED, SEED = 384, 10, 100, 0
CHUNK = 100_000
MIB = 1024.0 * 1024.0

#: case -> (what it runs, k, registered strategy (None: Rep(B)), its options)
CASES: dict[str, tuple[str, int, str | None, dict]] = {
    "entropy": ("entropy", 100, "entropy", {}),
    "coreset": ("coreset", 1000, "coreset", {}),
    "kmeans": ("kmeans", 100, "kmeans", {}),
    "badge": ("badge", 100, "badge", {}),
    "badge_float32": ("badge (precision float32)", 100, "badge", {"precision": "float32"}),
    "density_weighted": ("density_weighted (K = 10, index auto)", 100, "density_weighted", {}),
    "representativeness": ("Rep(B) of a 100-row batch (K = 10, index auto)", 100, None, {}),
}


# ---------------------------------------------------------------- data
def write_arrays(directory: Path, n: int) -> None:
    """Clustered embeddings (50 clusters) and softmax probabilities, written chunk by chunk (bounded memory)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    centers = rng.standard_normal((50, D), dtype=np.float32)
    spread = rng.uniform(0.3, 0.8, 50).astype(np.float32)
    embeddings = np.lib.format.open_memmap(directory / "embeddings.npy", mode="w+", dtype=np.float32, shape=(n, D))
    probs = np.lib.format.open_memmap(directory / "probs.npy", mode="w+", dtype=np.float32, shape=(n, C))
    klass = np.empty(n, dtype=np.int64)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        chunk_rng = np.random.default_rng([SEED, start])
        cluster = chunk_rng.integers(0, 50, stop - start)
        x = chunk_rng.standard_normal((stop - start, D), dtype=np.float32)
        x *= spread[cluster][:, None]
        x += centers[cluster]
        embeddings[start:stop] = x
        logits = chunk_rng.standard_normal((stop - start, C)).astype(np.float32)
        logits[np.arange(stop - start), cluster % C] += chunk_rng.uniform(0.0, 6.0, stop - start).astype(np.float32)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs[start:stop] = e / e.sum(axis=1, keepdims=True)
        klass[start:stop] = cluster % C
    embeddings.flush()
    probs.flush()
    del embeddings, probs
    labeled = np.sort(rng.choice(n, N_LABELED, replace=False)).astype(np.int64)
    labels = np.full((n, C), np.nan, dtype=np.float32)
    labels[labeled] = 0.0
    labels[labeled, klass[labeled]] = 1.0
    np.save(directory / "labeled.npy", labeled)
    np.save(directory / "labels.npy", labels)


# ---------------------------------------------------------------- child: one selection case
def _hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024.0
    return float("nan")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) / 1024.0
    return float("nan")


def child(case: str, directory: Path, recall_sample: int) -> dict:
    from lit_al.analysis import representativeness
    from lit_al.index import knn_search, resolve_knn_index
    from lit_al.strategies import get_strategy, registered_strategies

    registered_strategies()  # every import (torch, FAISS) before the baseline
    baseline = _rss_mib()

    embeddings = np.load(directory / "embeddings.npy", mmap_mode="r")
    probs = np.load(directory / "probs.npy", mmap_mode="r")
    labeled = np.load(directory / "labeled.npy")
    n = embeddings.shape[0]
    unlabeled = np.setdiff1d(np.arange(n), labeled)
    outputs = {"embeddings": embeddings, "probs": probs}
    _, k, name, options = CASES[case]
    start = time.perf_counter()
    extra: dict = {}
    if name is None:
        batch = np.sort(np.random.default_rng(SEED).choice(n, k, replace=False))
        extra["value"] = representativeness(embeddings, batch, k=10)
        extra["index"] = resolve_knn_index("auto", k, n)
    else:
        strategy = get_strategy(name, multi_label=False, **options)
        picked = strategy.select(outputs, labeled, unlabeled, k, seed=SEED).indices
        extra["picked"] = int(np.unique(picked).size)
        if case == "density_weighted":
            extra["index"] = resolve_knn_index(strategy.index, unlabeled.size, unlabeled.size)
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "peak_rss_mib": _hwm_mib(), "baseline_rss_mib": baseline, **extra}
    if case == "density_weighted" and extra["index"] != "exact":
        result.update(_recall(embeddings, unlabeled, recall_sample, extra["index"], knn_search))
    return result


def _recall(embeddings, unlabeled: np.ndarray, sample: int, method: str, knn_search) -> dict:
    """Recall@10 of the approximate self-excluded neighbour lists against exact ones on ``sample`` query rows.

    The index is rebuilt with the strategy's seed (its first draw from ``default_rng(SEED)``),
    so the lists are the ones the strategy used.
    """
    base = np.ascontiguousarray(embeddings[unlabeled])
    rows = np.sort(np.random.default_rng(1).choice(unlabeled.size, min(sample, unlabeled.size), replace=False))
    seed = int(np.random.default_rng(SEED).integers(0, 2**31 - 1))
    start = time.perf_counter()
    _, exact = knn_search(base, base[rows], 11, method="exact")
    exact_seconds = time.perf_counter() - start
    _, approx = knn_search(base, base[rows], 11, method=method, seed=seed)
    hits = [np.intersect1d(np.setdiff1d(a, [r]), np.setdiff1d(e, [r])[:10]).size / 10
            for a, e, r in zip(approx, exact, rows)]
    return {"recall_at_10": float(np.mean(hits)), "recall_sample": int(rows.size),
            "exact_seconds_for_sample": exact_seconds}


# ---------------------------------------------------------------- part 3: where a pool's memory goes
def breakdown(pool_csv: Path, labels: list[str], tokenizer_path: Path) -> dict:
    """RSS added (and peak above the start) by each stage of loading a pool, measured in this process.

    Stages: ``read_table`` (the pandas frame alone, then dropped), ``ActiveDataModule.load`` (the
    ``Split`` lists of ids, texts and label tuples), ``tokenize`` (the flat token-id arrays),
    and a ``LabelState`` with every 10th row labeled plus its JSON form.
    """
    import gc

    from transformers import AutoTokenizer

    from lit_al.data import ActiveDataModule, LabelState
    from lit_al.data.readers import read_table

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path), use_fast=True)
    stages: dict[str, dict] = {}

    def stage(name, fn):
        gc.collect()
        start_rss = _rss_mib()
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        start = time.perf_counter()
        kept = fn()
        seconds = time.perf_counter() - start
        gc.collect()
        stages[name] = {"seconds": seconds, "rss_added_mib": _rss_mib() - start_rss, "peak_above_start_mib": _hwm_mib() - start_rss}
        return kept

    frame = stage("read_table (pandas frame)", lambda: read_table(pool_csv))
    del frame
    data = ActiveDataModule(train=str(pool_csv), labels=labels)
    stage("load (Split: ids, texts, label tuples)", data.load)
    stage("tokenize (flat int32 ids + offsets)", lambda: data.tokenize(tokenizer, cache_dir=None))

    def state():
        labeled = LabelState(data.pool.ids)
        rows = np.arange(0, len(data.pool), 10)
        labeled.add(rows, [data.pool.gold[i] for i in rows], 0, "oracle")
        return labeled, labeled.to_json()

    kept_state = stage(f"LabelState with {len(range(0, len(data.pool), 10)):,} labels + its JSON", state)
    return {"rows": len(data.pool), "stages": stages, "token_mib": (data.pool.tokens.ids.nbytes + data.pool.tokens.offsets.nbytes) / MIB,
            "total_rss_mib": _rss_mib(), "kept": len(kept_state)}


# ---------------------------------------------------------------- part 2: a fit round
def _tiny():
    spec = importlib.util.spec_from_file_location("tiny", REPO / "tests" / "tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def write_text_pool(folder: Path, n: int) -> Path:
    """A 3-class CSV pool of ``n`` texts from the tiny vocabulary, plus small dev and test files."""
    import pandas as pd

    tiny = _tiny()
    classes = list(tiny.WORDS)
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows, seed in (("train", n, 1), ("dev", 500, 2), ("test", 500, 3)):
        rng = np.random.default_rng(seed)
        label = rng.integers(0, 3, rows)
        topical = np.array([tiny.WORDS[c] for c in classes])[label[:, None], rng.integers(0, 6, (rows, 2))]
        filler = np.array(tiny.FILLER)[rng.integers(0, len(tiny.FILLER), (rows, 10))]
        length = rng.integers(3, 11, rows)
        texts = [" ".join([*t, *f[:m]]) for t, f, m in zip(topical.tolist(), filler.tolist(), length.tolist())]
        frame = pd.DataFrame({"id": [f"{split}-{i}" for i in range(rows)], "text": texts,
                              "label": np.array(classes)[label]})
        frame.to_csv(folder / f"{split}.csv", index=False)
    (folder / "labels.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
    return folder


def fit_round(work: Path, n: int, threads: int) -> dict:
    import pandas as pd

    data = write_text_pool(work / "text", n)
    model = _tiny().write_tiny_bert(work / "tiny-bert")
    memory = _breakdown_child(data, model, threads)
    run_dir = work / "run"
    config = {
        "seed": 0, "run_dir": str(run_dir), "overwrite": True,
        "model": {"model_name_or_path": str(model), "lr": 1e-3},
        "data": {"train": str(data / "train.csv"), "dev": str(data / "dev.csv"), "test": str(data / "test.csv"),
                 "max_length": 32, "batch_size": 32, "eval_batch_size": 512,
                 "initial": {"scenario": "random", "n": 100}},
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
        "strategy": "entropy",
        "loop": {"query_size": 100, "rounds": 1},
    }
    path = work / "fit.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    command = [sys.executable, "-m", "lit_al.cli", "fit", "--config", str(path)]
    if threads > 0:
        command += ["--threads", str(threads)]
    log = work / "fit.log"
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle:
        proc = subprocess.Popen(command, cwd=str(REPO), env=env, stdout=handle, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage: its peak RSS alone
    wall = time.perf_counter() - start
    peak = usage.ru_maxrss / 1024.0
    if os.waitstatus_to_exitcode(status) != 0:
        return {"status": "error", "error": (log.read_text().strip().splitlines() or ["?"])[-1], "wall_seconds": wall}
    metrics = pd.read_csv(run_dir / "metrics.csv")
    round0 = metrics.iloc[0].to_dict()
    columns = {c: float(round0[c]) for c in ("fit_seconds", "test_seconds", "predict_seconds", "select_seconds") if c in round0}
    state = json.loads((run_dir / "state.json").read_text())
    return {"status": "ok", "n": n, "wall_seconds": wall, "peak_rss_mib": peak, **columns, "memory": memory,
            "read_tokenize_state_seconds": wall - sum(columns.values()),
            "labeled_after": len(state["records"]), "token_bytes": sum(p.stat().st_size for p in (run_dir / "cache").glob("*"))}


def _breakdown_child(data: Path, model: Path, threads: int) -> dict:
    """``breakdown`` in a fresh process (its RSS is the pool's alone)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    if threads > 0:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--breakdown", str(data), "--workdir", str(model)],
                          cwd=str(REPO), env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][7:]) if lines else {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}


# ---------------------------------------------------------------- parent
def run(args) -> dict:
    report: dict = {"n": args.n, "load_1min": [os.getloadavg()[0]], "selection": {}, "fit": None}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if args.threads > 0:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_scale_", dir=args.workdir) as tmp:
        work = Path(tmp)
        if not args.skip_fit:
            report["fit"] = fit_round(work, args.fit_n or args.n, args.threads)
            report["load_1min"].append(os.getloadavg()[0])
            print("fit", report["fit"], flush=True)
        if not args.skip_selection:
            start = time.perf_counter()
            write_arrays(work / "arrays", args.n)
            report["write_seconds"] = time.perf_counter() - start
            for case in args.cases:
                proc = subprocess.run(
                    [sys.executable, str(Path(__file__).resolve()), "--child", case, "--workdir", str(work / "arrays"),
                     "--recall-sample", str(args.recall_sample)],
                    cwd=str(REPO), env=env, capture_output=True, text=True, timeout=args.timeout,
                )
                lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
                result = json.loads(lines[-1][7:]) if lines else {
                    "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
                report["selection"][case] = result
                report["load_1min"].append(os.getloadavg()[0])
                print(case, result, flush=True)
    return report


def to_markdown(report: dict, command: str) -> str:
    n = report["n"]
    matrix_mib = n * D * 4 / MIB
    load = report["load_1min"]
    lines = [
        f"# lit_al at scale: {n:,}-row pools",
        "",
        generated_by(command, "numpy", "faiss", "torch") + ". "
        f"Load average (1 min): {load[0]:.2f} at start, {max(load):.2f} at most, {load[-1]:.2f} at the end "
        f"({os.cpu_count()} CPU(s); seconds stretch with the load, peak RSS does not).",
        "",
    ]
    if report["selection"]:
        lines += [
            f"## Selection over memory-mapped arrays (n = {n:,}, d = {D}, embedding matrix {matrix_mib:,.0f} MiB)",
            "",
            "Fresh subprocess per case; `peak RSS` is the process's whole peak (interpreter, torch, FAISS, mapped pages "
            "read); `above imports` subtracts the RSS once torch, FAISS and every strategy are imported, before any "
            "array is read. The target is peak RSS ≤ 2 × the embedding matrix.",
            "",
            "| case | k | seconds | peak RSS MiB | above imports MiB | peak RSS / matrix | above imports / matrix | ≤ 2× | notes |",
            "|---|---:|---:|---:|---:|---:|---:|:---:|---|",
        ]
        for case, result in report["selection"].items():
            what, k = CASES[case][:2]
            if "error" in result:
                lines.append(f"| {what} | {k} | error: {result['error']} | | | | | | |")
                continue
            ratio = result["peak_rss_mib"] / matrix_mib
            above = result["peak_rss_mib"] - result["baseline_rss_mib"]
            notes = []
            if "index" in result:
                notes.append(f"index: {result['index']}")
            if "recall_at_10" in result:
                notes.append(f"recall@10 vs exact {result['recall_at_10']:.3f} on {result['recall_sample']} query rows "
                             f"(their exact search: {result['exact_seconds_for_sample']:.1f} s)")
            lines.append(f"| {what} | {k} | {result['seconds']:.1f} | {result['peak_rss_mib']:,.0f} | {above:,.0f} | "
                         f"{ratio:.2f} | {above / matrix_mib:.2f} | {'yes' if ratio <= 2 else 'no'} | {'; '.join(notes)} |")
        lines.append("")
    fit = report.get("fit")
    if fit:
        lines += [f"## One `lit_al fit` round on a synthetic {fit.get('n', 0):,}-text pool (tiny BERT, entropy, 100 + 100 labels)", ""]
        if fit["status"] != "ok":
            lines.append(f"Failed: {fit['error']}")
        else:
            parts = [("read, tokenize, state (wall − the columns)", fit["read_tokenize_state_seconds"]),
                     ("fit (100 labels, 1 epoch)", fit.get("fit_seconds", 0.0)),
                     ("test (500 rows)", fit.get("test_seconds", 0.0)),
                     ("predict (score the pool)", fit.get("predict_seconds", 0.0)),
                     ("select (entropy)", fit.get("select_seconds", 0.0))]
            lines += ["| phase | seconds | share |", "|---|---:|---:|"]
            lines += [f"| {name} | {sec:.1f} | {sec / fit['wall_seconds']:.0%} |" for name, sec in parts]
            lines += [f"| **total (wall)** | {fit['wall_seconds']:.1f} | |", "",
                      f"Peak RSS of the `lit_al fit` process: {fit['peak_rss_mib']:,.0f} MiB; token-id cache "
                      f"{fit['token_bytes'] / MIB:,.0f} MiB; {fit['labeled_after']} labels in the state after the round."]
            memory = fit.get("memory") or {}
            if "stages" in memory:
                lines += ["", f"Where a {memory['rows']:,}-row pool's memory goes (a fresh process, stage by stage; "
                          f"its RSS once everything is loaded: {memory['total_rss_mib']:,.0f} MiB, about 500 of them "
                          "the torch and transformers imports):", "",
                          "| stage | seconds | RSS kept MiB | peak above its start MiB |", "|---|---:|---:|---:|"]
                lines += [f"| {name} | {v['seconds']:.1f} | {v['rss_added_mib']:,.0f} | {v['peak_above_start_mib']:,.0f} |"
                          for name, v in memory["stages"].items()]
                lines += ["", f"The token ids themselves are {memory['token_mib']:,.0f} MiB."]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--fit-n", type=int, default=None, help="rows of the text pool (default: --n)")
    parser.add_argument("--cases", type=lambda s: s.split(","), default=list(CASES))
    parser.add_argument("--recall-sample", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="threads per process; 0 keeps the defaults")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--skip-selection", action="store_true")
    parser.add_argument("--skip-fit", action="store_true")
    parser.add_argument("--workdir", default=None, help="where the temporary arrays go (default: the system's)")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--breakdown", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.breakdown:
        folder = Path(args.breakdown)
        labels = (folder / "labels.txt").read_text().split()
        print("RESULT " + json.dumps(breakdown(folder / "train.csv", labels, Path(args.workdir))), flush=True)
        return 0
    if args.child:
        print("RESULT " + json.dumps(child(args.child, Path(args.workdir), args.recall_sample)), flush=True)
        return 0
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        raise SystemExit(f"--cases: unknown {unknown}; known: {sorted(CASES)}")
    report = run(args)
    emit(to_markdown(report, command_line("bench_scale.py", argv)), report, args.output, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
