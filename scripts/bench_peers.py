#!/usr/bin/env python
"""Selection time of lit_al and of peer libraries on the same arrays, measured side by side in one run.

What is compared
----------------
The same synthetic float32 outputs as ``scripts/bench_selection.py`` (its generator, seed 0:
n = 10^4 and 10^5 pool rows, d = 384, C = 10, T = 20 MC passes, k = 100, 100 labeled rows)
go through

- lit_al: ``get_strategy(name, multi_label=False).select(outputs, labeled, unlabeled, k, seed=0)``;
- small-text 1.4.1, scikit-activeml 1.0.1 and baal 2.1.0, each fed through a fake classifier
  (or dataset) that returns the arrays: ``predict_proba`` / ``embed`` / an ensemble member per
  MC pass hand back rows of the same ``probs``, ``embeddings`` and ``mc_probs``.

The peers live in a virtual environment of their own (``.bench-venv/``, built by this script:
``torch==2.13.0`` first, the CPU build, then the three pinned libraries). They never become a
dependency of lit_al; nothing of their code is used by lit_al.

Protocol
--------
One long-lived worker process per library (lit_al's in this interpreter's environment, the
peers' in ``.bench-venv``) loads the arrays once per size. Cases run interleaved: for each
(size, strategy) every library in turn. Per case the worker

1. calls the strategy once untimed (lazy imports, first-call set-up: excluded on both sides),
2. calls it ``--repeats`` times, each after resetting the kernel's peak-RSS mark
   (``/proc/self/clear_refs``); ``seconds`` is the median, ``peak MiB`` the largest rise of
   the peak RSS over the RSS before the call (every native buffer counts),
3. returns the picked pool indices of the last call.

Only the library call is timed: building a strategy object and the fake classifier, and
fitting the fake classifier (a no-op), happen before the clock starts. ``overlap`` is
``|picked_lit_al ∩ picked_peer| / k``. Threads: ``--threads 1`` (default) sets
OMP/MKL/OpenBLAS to one thread in every worker and torch to one intra-op thread; ``--threads 0``
keeps each library's defaults. The table reports what each worker ran with.

Where the algorithms differ by design, the table says so (``NOTES``): equal overlap is then
not expected.

Usage::

    python scripts/bench_peers.py                                   # n = 10^4 and 10^5, everything
    python scripts/bench_peers.py --sizes 10000 --strategies entropy,coreset --repeats 1
    python scripts/bench_peers.py --output docs/benchmarks/peers.md --json docs/benchmarks/peers.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_common import command_line, emit, generated_by

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".bench-venv"
PEER_PINS = ("small-text==1.4.1", "scikit-activeml==1.0.1", "baal==2.1.0")
TORCH_PIN = "torch==2.13.0"
LIBRARIES = ("lit_al", "small-text", "scikit-activeml", "baal")
MIB = 1024.0 * 1024.0

#: strategy -> (lit_al variants: label -> (registered name, options), peers: library -> adapter).
CASES: dict[str, tuple[dict[str, tuple[str, dict]], dict[str, str]]] = {
    "random": ({"random": ("random", {})}, {"small-text": "random", "scikit-activeml": "random", "baal": "random"}),
    "least_confidence": (
        {"least_confidence": ("least_confidence", {})},
        {"small-text": "least_confidence", "scikit-activeml": "least_confidence", "baal": "least_confidence"},
    ),
    "margin": ({"margin": ("margin", {})}, {"small-text": "margin", "scikit-activeml": "margin", "baal": "margin"}),
    "entropy": ({"entropy": ("entropy", {})}, {"small-text": "entropy", "scikit-activeml": "entropy", "baal": "entropy"}),
    "bald": ({"bald": ("bald", {"mc_passes": 20})}, {"small-text": "bald", "scikit-activeml": "bald", "baal": "bald"}),
    "batch_bald": ({"batch_bald": ("batch_bald", {})}, {"scikit-activeml": "batch_bald", "baal": "batch_bald"}),
    "coreset": ({"coreset": ("coreset", {})}, {"small-text": "coreset", "scikit-activeml": "coreset"}),
    "kmeans": ({"kmeans": ("kmeans", {}), "FAISS k-means alone (the floor)": ("@kmeans_train", {})},
               {"small-text": "kmeans"}),
    "badge": ({"badge": ("badge", {})}, {"small-text": "badge", "scikit-activeml": "badge"}),
    "cal": ({"cal": ("cal", {}), "exact 10-NN search alone (the floor)": ("@knn", {})},
            {"small-text": "cal", "scikit-activeml": "cal"}),
    "dal": (
        {"dal": ("dal", {}), "dal (sub_batches 1)": ("dal", {"sub_batches": 1})},
        {"scikit-activeml": "dal_single_fit"},
    ),
    "egl": ({"egl": ("egl", {})}, {}),
}

#: (strategy, library) -> how the peer's algorithm differs from lit_al's by design.
NOTES: dict[tuple[str, str], str] = {
    ("random", "*"): "independent random streams: overlap ≈ k/|U| by chance",
    ("bald", "small-text"): "BALD in bits (log2) over all pool rows, then the unlabeled ones: the same ranking",
    ("batch_bald", "scikit-activeml"): "joint entropies estimated from its own samples and random_state",
    ("batch_bald", "baal"): "baal samples configurations with its own generator (num_draw 500)",
    ("coreset", "small-text"): "normalize=False, euclidean: the same greedy k-center",
    ("kmeans", "small-text"): "sklearn KMeans (k-means++, n_init 'auto', up to 300 iterations) vs FAISS k-means (n_init 1, 10 iterations)",
    ("badge", "small-text"): "materialises the (n, C·d) gradient embeddings; its own k-means++ seeding draws",
    ("badge", "scikit-activeml"): "its own k-means++ seeding draws",
    ("cal", "small-text"): "neighbours among labeled AND unlabeled rows (lit_al and the paper: labeled only)",
    ("cal", "scikit-activeml"): "neighbours among the labeled rows, as lit_al",
    ("dal", "scikit-activeml"): "one fit of a logistic-regression discriminator (greedy_selection=True) vs lit_al's "
    "MLP discriminator retrained per sub-batch (5 by default; 1 = a single fit, shown beside it)",
    ("badge", "memory"): "not run: the peer materialises (n, C·d) gradient embeddings, about {gib:.1f} GiB "
    "here (over --max-peer-gib)",
    ("egl", "*"): "no peer takes arrays: small-text's EGL differentiates a PyTorch model, scikit-activeml's "
    "expected model change is for regression, baal has none",
}


# ---------------------------------------------------------------- shared helpers
def _bench_selection():
    """``scripts/bench_selection.py`` as a module: its data generator and peak-RSS helpers."""
    spec = importlib.util.spec_from_file_location("bench_selection", REPO / "scripts" / "bench_selection.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def _load(data_dir: Path) -> dict[str, np.ndarray]:
    arrays = {p.stem: np.load(p) for p in sorted(data_dir.glob("*.npy"))}
    labels = arrays["labels"]
    arrays["y"] = np.where(np.isnan(labels).any(axis=1), -1, np.nan_to_num(labels).argmax(axis=1)).astype(np.int64)
    return arrays


# ---------------------------------------------------------------- lit_al adapter
def _lit_al_call(label: str, strategy: str, arrays: dict, k: int):
    from lit_al.strategies import get_strategy

    name, options = CASES[strategy][0][label]
    outputs = {key: arrays[key] for key in ("probs", "embeddings", "mc_probs", "labels") if key in arrays}
    labeled, unlabeled = arrays["labeled"], arrays["unlabeled"]
    if name in FLOORS:
        return FLOORS[name](outputs, labeled, unlabeled, k)

    def call():
        return get_strategy(name, multi_label=False, **options).select(outputs, labeled, unlabeled, k, seed=0).indices

    return call


def _knn_floor(outputs, labeled, unlabeled, k):
    """CAL's neighbour search alone (FAISS exact, the unlabeled rows against the labeled ones): no CAL can beat it."""
    from lit_al.index import nearest_neighbors

    embeddings = outputs["embeddings"]
    def call():
        nearest_neighbors(embeddings[labeled], embeddings[unlabeled], 10)
        return np.empty(0, dtype=np.int64)  # picks nothing: no overlap is reported

    return call


def _kmeans_floor(outputs, labeled, unlabeled, k):
    """lit_al's k-means training alone (FAISS, 10 Lloyd iterations over every unlabeled row), without the nearest-point step."""
    import faiss

    def call():
        x = np.ascontiguousarray(outputs["embeddings"][unlabeled], dtype=np.float32)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        kmeans = faiss.Kmeans(x.shape[1], k, niter=10, nredo=1, seed=0, max_points_per_centroid=x.shape[0],
                              min_points_per_centroid=1, verbose=False)
        kmeans.train(x)
        return np.empty(0, dtype=np.int64)  # picks nothing: no overlap is reported

    return call


#: lit_al variants that time a building block instead of a strategy: the least any implementation of the
#: strategy must spend on these arrays, which bounds the peer/lit_al ratio any implementation can reach.
FLOORS = {"@knn": _knn_floor, "@kmeans_train": _kmeans_floor}


# ---------------------------------------------------------------- peer adapters (run in .bench-venv)
class _Rows:
    """A small-text dataset stand-in: pool row numbers; indexing returns the sub-dataset."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def __getitem__(self, index):
        return _Rows(self.rows[index])

    def __len__(self) -> int:
        return len(self.rows)


class _SmallTextClassifier:
    """Returns the arrays' rows for a dataset of pool rows (``predict_proba``, ``embed``)."""

    def __init__(self, arrays: dict) -> None:
        self.arrays = arrays

    def predict_proba(self, dataset, dropout_sampling=1):
        if dropout_sampling > 1:  # small-text's BALD wants (n, T, C)
            return np.transpose(self.arrays["mc_probs"][:dropout_sampling, dataset.rows], (1, 0, 2))
        return self.arrays["probs"][dataset.rows]

    def embed(self, dataset, return_proba=False, pbar=None, **_):
        embeddings = self.arrays["embeddings"][dataset.rows]
        return (embeddings, self.arrays["probs"][dataset.rows]) if return_proba else embeddings


def _small_text_call(adapter: str, arrays: dict, k: int):
    import small_text.query_strategies as Q

    strategies = {
        "random": lambda: Q.RandomSampling(),
        "least_confidence": lambda: Q.LeastConfidence(),
        "margin": lambda: Q.BreakingTies(),
        "entropy": lambda: Q.PredictionEntropy(),
        "bald": lambda: Q.BALD(dropout_samples=arrays["mc_probs"].shape[0]),
        "coreset": lambda: Q.GreedyCoreset(distance_metric="euclidean", normalize=False),
        "kmeans": lambda: Q.EmbeddingKMeans(normalize=True),
        "badge": lambda: _small_text_badge(arrays["probs"].shape[1]),
        "cal": lambda: Q.ContrastiveActiveLearning(k=10, normalize=False, pbar=None),
    }
    strategy = strategies[adapter]()
    clf, dataset = _SmallTextClassifier(arrays), _Rows(np.arange(arrays["probs"].shape[0]))
    labeled, unlabeled = arrays["labeled"], arrays["unlabeled"]
    y = arrays["y"][labeled]
    kwargs = {"pbar": None} if adapter in ("coreset", "kmeans", "badge") else {}
    return lambda: strategy.query(clf, dataset, unlabeled, labeled, y, n=k, **kwargs)


def _small_text_badge(num_classes: int):
    from small_text.integrations.pytorch.query_strategies import BADGE

    return BADGE(num_classes)


def _skactiveml_classes():
    from skactiveml.base import SkactivemlClassifier

    class FakeClassifier(SkactivemlClassifier):
        """Looks rows up in ``table`` by the pool row number in column 0 of X."""

        def __init__(self, table=None, embeddings=None, classes=None, missing_label=np.nan,
                     cost_matrix=None, random_state=None):
            super().__init__(classes=classes, missing_label=missing_label, cost_matrix=cost_matrix,
                             random_state=random_state)
            self.table = table
            self.embeddings = embeddings

        def fit(self, X, y, sample_weight=None):
            self._validate_data(X, y, sample_weight)
            return self

        def predict_proba(self, X, return_embeddings=False):
            rows = np.asarray(X)[:, 0].astype(np.int64)
            probs = self.table[rows]
            return (probs, self.embeddings[rows]) if return_embeddings else probs

        def predict(self, X):
            return self.predict_proba(X).argmax(axis=1)

    return FakeClassifier


def _skactiveml_call(adapter: str, arrays: dict, k: int):
    import skactiveml.pool as P
    from skactiveml.classifier import SklearnClassifier
    from sklearn.linear_model import LogisticRegression

    Fake = _skactiveml_classes()
    n, C = arrays["probs"].shape
    rows = np.arange(n, dtype=np.float64)[:, None]
    y = np.where(arrays["y"] >= 0, arrays["y"], np.nan).astype(np.float64)
    classes = np.arange(C)
    clf = Fake(table=arrays["probs"], embeddings=arrays["embeddings"], classes=classes).fit(rows, y)
    if adapter in ("least_confidence", "margin", "entropy"):
        method = {"least_confidence": "least_confident", "margin": "margin_sampling", "entropy": "entropy"}[adapter]
        strategy = P.UncertaintySampling(method=method, random_state=0)
        return lambda: strategy.query(rows, y, clf, fit_clf=False, batch_size=k)
    if adapter in ("bald", "batch_bald"):
        ensemble = [Fake(table=member, classes=classes).fit(rows, y) for member in arrays["mc_probs"]]
        strategy = (P.GreedyBALD if adapter == "bald" else P.BatchBALD)(random_state=0)
        return lambda: strategy.query(rows, y, ensemble, fit_ensemble=False, batch_size=k)
    if adapter == "badge":
        strategy = P.Badge(clf_embedding_flag_name="return_embeddings", random_state=0)
        return lambda: strategy.query(rows, y, clf, fit_clf=False, batch_size=k)
    if adapter == "cal":
        strategy = P.ContrastiveAL(clf_embedding_flag_name="return_embeddings", random_state=0,
                                   nearest_neighbors_dict={"n_neighbors": 10})
        return lambda: strategy.query(rows, y, clf, fit_clf=False, batch_size=k)
    if adapter == "coreset":
        strategy = P.CoreSet(random_state=0)
        return lambda: strategy.query(arrays["embeddings"], y, batch_size=k)
    if adapter == "dal_single_fit":
        strategy = P.DiscriminativeAL(greedy_selection=True, random_state=0)
        discriminator = SklearnClassifier(LogisticRegression(max_iter=200), random_state=0)
        return lambda: strategy.query(arrays["embeddings"], y, discriminator, batch_size=k)
    if adapter == "random":
        strategy = P.RandomSampling(random_state=0)
        return lambda: strategy.query(rows, y, batch_size=k)
    raise KeyError(adapter)


def _baal_call(adapter: str, arrays: dict, k: int):
    import baal.active.heuristics as H

    unlabeled = arrays["unlabeled"]
    if adapter in ("bald", "batch_bald"):
        predictions = np.transpose(arrays["mc_probs"][:, unlabeled], (1, 2, 0))  # baal: (n, C, T)
    else:
        predictions = arrays["probs"][unlabeled]
    heuristic = {
        "random": lambda: H.Random(seed=0),
        "least_confidence": lambda: H.Certainty(),
        "margin": lambda: H.Margin(),
        "entropy": lambda: H.Entropy(),
        "bald": lambda: H.BALD(),
        "batch_bald": lambda: H.BatchBALD(num_samples=k),
    }[adapter]()
    return lambda: unlabeled[np.asarray(heuristic(predictions))[:k]]


PEER_CALLS = {"small-text": _small_text_call, "scikit-activeml": _skactiveml_call, "baal": _baal_call}


# ---------------------------------------------------------------- worker
def _threads_in_use() -> int | None:
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def measure(call, repeats: int, budget: float) -> dict:
    """Warm call (untimed), then up to ``repeats`` timed calls (fewer once they took ``budget`` seconds), each with the peak-RSS mark reset before it."""
    call()
    times, peaks, picked = [], [], None
    while len(times) < repeats and sum(times) < budget:
        gc.collect()
        _reset_peak()
        before = _status_mib("VmRSS")
        start = time.perf_counter()
        picked = call()
        times.append(time.perf_counter() - start)
        peaks.append(_status_mib("VmHWM") - before)
    return {"seconds": statistics.median(times), "times": times, "peak_mib": max(peaks),
            "picked": np.asarray(picked, dtype=np.int64).ravel().tolist()}


def worker_main(library: str, threads: int) -> None:
    """Answer one JSON request per stdin line with one JSON line on stdout."""
    cache: dict[str, dict] = {}
    if threads > 0:
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:
            pass
    if library == "lit_al":
        from lit_al.strategies import registered_strategies

        registered_strategies()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            arrays = cache.get(request["data_dir"])
            if arrays is None:
                cache.clear()
                gc.collect()
                arrays = cache[request["data_dir"]] = _load(Path(request["data_dir"]))
            k = int(request["k"])
            if library == "lit_al":
                call = _lit_al_call(request["label"], request["strategy"], arrays, k)
            else:
                call = PEER_CALLS[library](request["adapter"], arrays, k)
            result = measure(call, int(request["repeats"]), float(request["repeat_budget"]))
            result["threads"] = _threads_in_use()
            result["status"] = "ok"
        except Exception as exc:  # reported in the table, the run goes on
            result = {"status": "error", "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"}
        print(json.dumps(result), flush=True)


# ---------------------------------------------------------------- parent
def ensure_peer_venv(rebuild: bool) -> Path:
    """``.bench-venv`` with the CPU torch first (an unpinned torch pulls GBs of CUDA), then the peers."""
    python = VENV / "bin" / "python"
    marker = VENV / "peers.txt"
    wanted = "\n".join((TORCH_PIN, *PEER_PINS))
    if not rebuild and python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", TORCH_PIN], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PINS], check=True)
    marker.write_text(wanted)
    return python


class Worker:
    """A long-lived worker process; ``ask`` sends one request and waits at most ``timeout`` seconds."""

    def __init__(self, library: str, python: str, threads: int, env: dict) -> None:
        self.library, self.python, self.threads, self.env = library, python, threads, env
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.python, str(Path(__file__).resolve()), "--worker", self.library, "--threads", str(self.threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=self.env, cwd=str(REPO),
        )

    def ask(self, request: dict, timeout: float) -> dict:
        if self.process is None or self.process.poll() is not None:
            self.start()
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.stop()
            return {"status": "timeout" if not ready else "error", "error": f"no answer within {timeout:.0f} s"}
        return json.loads(line)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def _env(threads: int, pythonpath: str | None) -> dict:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", TQDM_DISABLE="1", PYTHONWARNINGS="ignore")
    if threads > 0:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    else:
        env.pop("PYTHONPATH", None)
    return env


def badge_peer_gib(n: int, c: int = 10, d: int = 384) -> float:
    """Peak of a peer's BADGE: the (n, C·d) float64 gradient embeddings and a copy (measured 1.8× at n = 2000)."""
    return 1.8 * n * c * d * 8 / 2**30


def _note(strategy: str, library: str) -> str:
    return NOTES.get((strategy, library)) or NOTES.get((strategy, "*"), "")


def run(args) -> dict:
    bench = _bench_selection()
    peer_python = str(ensure_peer_venv(args.rebuild_venv))
    strategies = [s for s in (args.strategies.split(",") if args.strategies else CASES)]
    unknown = sorted(set(strategies) - set(CASES))
    if unknown:
        raise SystemExit(f"--strategies: unknown {unknown}; known: {sorted(CASES)}")
    workers = {"lit_al": Worker("lit_al", sys.executable, args.threads, _env(args.threads, str(REPO)))}
    for library in LIBRARIES[1:]:
        workers[library] = Worker(library, peer_python, args.threads, _env(args.threads, None))
    rows: list[dict] = []
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmp:
        for n in args.sizes:
            data_dir = Path(tmp) / f"n{n}"
            bench.write_dataset(data_dir, n, {"probs", "embeddings", "mc_probs"})
            for strategy in strategies:
                variants, peers = CASES[strategy]
                ours: dict[str, dict] = {}
                for label in variants:  # interleaved: lit_al's variants, then each peer, per strategy
                    request = {"data_dir": str(data_dir), "k": args.k, "repeats": args.repeats,
                               "repeat_budget": args.repeat_budget, "strategy": strategy, "label": label}
                    ours[label] = workers["lit_al"].ask(request, args.timeout)
                    rows.append({"n": n, "strategy": strategy, "library": "lit_al", "variant": label, **ours[label]})
                    print(f"n={n} {strategy} lit_al[{label}]: {ours[label].get('seconds', ours[label].get('error'))}", flush=True)
                for library, adapter in peers.items():
                    request = {"data_dir": str(data_dir), "k": args.k, "repeats": args.repeats, "adapter": adapter,
                               "repeat_budget": args.repeat_budget}
                    gib = badge_peer_gib(n) if strategy == "badge" else 0.0
                    if gib > args.max_peer_gib:
                        rows.append({"n": n, "strategy": strategy, "library": library, "variant": adapter,
                                     "status": "skipped", "error": "memory",
                                     "note": NOTES[("badge", "memory")].format(gib=gib)})
                        continue
                    result = workers[library].ask(request, args.timeout)
                    row = {"n": n, "strategy": strategy, "library": library, "variant": adapter, **result,
                           "note": _note(strategy, library)}
                    for label, mine in ours.items():
                        if result.get("status") == "ok" and mine.get("status") == "ok":
                            row.setdefault("ratio", {})[label] = result["seconds"] / mine["seconds"]
                            if mine["picked"]:
                                common = np.intersect1d(result["picked"], mine["picked"]).size
                                row.setdefault("overlap", {})[label] = common / len(mine["picked"])
                    rows.append(row)
                    print(f"n={n} {strategy} {library}: {result.get('seconds', result.get('error'))}", flush=True)
                if not peers:
                    rows.append({"n": n, "strategy": strategy, "library": "—", "status": "no peer",
                                 "note": _note(strategy, "*")})
            load.append(os.getloadavg()[0])
    for worker in workers.values():
        worker.stop()
    return {"rows": rows, "load_1min": load}


def _cell(x: float | None, unit: str = "") -> str:
    if x is None:
        return "—"
    return (f"{x:.3g}" if x < 100 else f"{x:.0f}") + unit


def to_markdown(report: dict, command: str, args) -> str:
    load = report["load_1min"]
    lines = [
        "# lit_al against peer libraries: selection on the same arrays, one run",
        "",
        generated_by(command, "numpy", "faiss", "torch") + f"; peers: {', '.join(PEER_PINS)} in `.bench-venv`. "
        f"Load average (1 min): {load[0]:.2f} at start, {max(load):.2f} at most between sizes, {load[-1]:.2f} at the end "
        "(above the core count the absolute seconds are noisy; the ratios less so: both sides ran interleaved, case by "
        "case). Rows marked \"(the floor)\" time a building block of lit_al's strategy, not a strategy: the peer's time "
        "over it bounds the ratio any implementation of the strategy could reach on these arrays.",
        "",
        f"Synthetic float32 outputs of `scripts/bench_selection.py` (seed 0): d = 384, C = 10, T = 20, k = {args.k}, "
        f"100 labeled rows; single-label. `seconds`: median of up to {args.repeats} warm call(s) of the library call only "
        f"(one untimed call first, on both sides; no further repeats once they took {args.repeat_budget:.0f} s); `peak MiB`: the largest rise of the process's peak RSS during a timed call "
        "over the RSS before it. `peer/lit_al` > 1 means lit_al is faster. `overlap`: |picked by both| / k. "
        f"Threads: {'one per worker (OMP/MKL/OpenBLAS = 1, torch 1)' if args.threads == 1 else ('libraries defaults' if args.threads == 0 else args.threads)}; "
        "`threads` is torch's intra-op count in that worker (— where torch is not loaded).",
        "",
        "| n | strategy | library | call | seconds | peak MiB | threads | peer/lit_al | overlap | differs by design |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["rows"]:
        status = row.get("status")
        if status == "no peer":
            lines.append(f"| {row['n']} | {row['strategy']} | — | — | — | — | — | — | — | {row['note']} |")
            continue
        if status != "ok":
            seconds = f"{status}: {row.get('error', '')}"
            peak = threads = "—"
        else:
            seconds, peak = f"{row['seconds']:.4g}", _cell(row["peak_mib"])
            threads = "—" if row.get("threads") is None else str(row["threads"])
        ratio = "; ".join(f"{v:.2g}× vs {k}" if len(row.get("ratio", {})) > 1 else f"{v:.3g}×"
                          for k, v in row.get("ratio", {}).items()) or "—"
        overlap = "; ".join(f"{v:.2f}" for v in row.get("overlap", {}).values()) or "—"
        lines.append(f"| {row['n']} | {row['strategy']} | {row['library']} | {row.get('variant', '')} | {seconds} | {peak} | "
                     f"{threads} | {ratio} | {overlap} | {row.get('note', '')} |")
    lines += ["", "Peer calls: small-text `QueryStrategy.query(clf, dataset, unlabeled, labeled, y, n=k)` with a fake "
              "classifier whose `predict_proba`/`embed` return the arrays' rows; scikit-activeml `query(X, y, clf, "
              "fit_clf=False, batch_size=k)` with X = pool row numbers and a fake `SkactivemlClassifier` (Core-Set and "
              "DAL: X = the embeddings), BALD/BatchBALD with one fake ensemble member per MC pass; baal heuristics called "
              "on the unlabeled rows' probabilities ((n, C, T) for BALD and BatchBALD).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10_000, 100_000])
    parser.add_argument("--strategies", default="", help="comma-separated subset of " + ",".join(CASES))
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="threads per worker; 0 keeps the libraries' defaults")
    parser.add_argument("--repeat-budget", type=float, default=20.0, help="no further repeats once they took this long")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per case (warm call + repeats)")
    parser.add_argument("--max-peer-gib", type=float, default=4.0, help="skip a peer's BADGE above this estimated peak")
    parser.add_argument("--output", type=Path, default=None, help="write the Markdown report here")
    parser.add_argument("--json", type=Path, default=None, help="write the raw results here")
    parser.add_argument("--rebuild-venv", action="store_true", help="rebuild .bench-venv")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.threads)
        return 0
    report = run(args)
    emit(to_markdown(report, command_line("bench_peers.py", argv), args), report, args.output, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
