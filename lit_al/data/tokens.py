"""Tokenize each text once, cache token ids on disk, pad per batch.

Token ids of a split are stored flat (``ids``, int32) with row ``offsets`` so a
large pool is two arrays, not a list of Python lists. The cache key covers the
tokenizer (its full serialised definition), the maximum length and the data
file's bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..atomic import atomic_write_with

log = logging.getLogger(__name__)


@dataclass
class TokenizedTexts:
    ids: np.ndarray  # (total_tokens,) int32
    offsets: np.ndarray  # (n + 1,) int64

    def __len__(self) -> int:
        return self.offsets.shape[0] - 1

    def row(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def tokenizer_fingerprint(tokenizer) -> str:
    digest = hashlib.sha256()
    digest.update(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # truncation/padding are call-time settings the tokenizer records in its state
        definition = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
        digest.update(json.dumps(definition, sort_keys=True).encode())
    else:
        digest.update(repr(sorted(tokenizer.get_vocab().items())).encode())
    return digest.hexdigest()


def tokenize_texts(tokenizer, texts: Sequence[str], max_length: int, batch: int = 4096) -> TokenizedTexts:
    """Token ids of ``texts`` (truncated to ``max_length``), flattened one tokenizer batch at a time.

    Each batch becomes one int32 array at once: no per-text array or list of Python ints
    outlives its batch, so a 10^6-text pool peaks near its final two arrays.
    """
    chunks: list[np.ndarray] = []
    lengths = np.empty(len(texts), dtype=np.int64)
    for start in range(0, len(texts), batch):
        rows = tokenizer(list(texts[start : start + batch]), truncation=True, max_length=max_length,
                         add_special_tokens=True)["input_ids"]
        counts = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        lengths[start : start + len(rows)] = counts
        chunks.append(np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int32, count=int(counts.sum())))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int32)
    return TokenizedTexts(ids, offsets)


def cached_tokenize(
    tokenizer,
    texts: Sequence[str],
    max_length: int,
    data_key: str | None,
    cache_dir: str | Path | None,
    fingerprint: str | None = None,
) -> TokenizedTexts:
    """Tokenize ``texts`` or load them from ``cache_dir`` (key: tokenizer, max_length, data).

    ``fingerprint``: ``tokenizer_fingerprint(tokenizer)`` when the caller already has it;
    ``data_key`` may be None without a cache.
    """
    if cache_dir is None:
        return tokenize_texts(tokenizer, texts, max_length)
    fingerprint = fingerprint or tokenizer_fingerprint(tokenizer)
    key = hashlib.sha256(f"{fingerprint}|{max_length}|{data_key}|{len(texts)}".encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"tokens-{key}.npz"
    cached = _read_cache(path, len(texts))
    if cached is not None:
        return cached
    tokens = tokenize_texts(tokenizer, texts, max_length)
    # a unique temporary name per writer: two runs sharing cache_dir may write the same key at once
    atomic_write_with(path, lambda handle: np.savez(handle, ids=tokens.ids, offsets=tokens.offsets))
    log.info("cached token ids of %d texts in %s", len(texts), path)
    return tokens


def _read_cache(path: Path, n_texts: int) -> TokenizedTexts | None:
    """The cached token ids at ``path``; None when absent, or unreadable (then it is rebuilt)."""
    if not path.exists():
        return None
    try:
        with np.load(path) as cached:
            tokens = TokenizedTexts(cached["ids"], cached["offsets"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("token cache %s is unreadable (%s); rebuilding it", path, exc)
        return None
    if len(tokens) != n_texts or (n_texts and tokens.offsets[-1] != tokens.ids.shape[0]):
        log.warning("token cache %s does not match its texts; rebuilding it", path)
        return None
    return tokens


class TokenDataset(torch.utils.data.Dataset):
    """Examples ``rows`` of a tokenized split, with optional 0/1 targets and their pool indices."""

    def __init__(self, tokens: TokenizedTexts, rows: np.ndarray, targets: np.ndarray | None = None) -> None:
        self.tokens = tokens
        self.rows = np.asarray(rows, dtype=np.int64)
        self.targets = targets

    def __len__(self) -> int:
        return self.rows.shape[0]

    def __getitem__(self, i: int) -> dict:
        row = int(self.rows[i])
        item = {"input_ids": self.tokens.row(row), "pool_index": row}
        if self.targets is not None:
            item["labels"] = self.targets[i]
        return item


class PadCollator:
    """Dynamic padding: each batch is padded to its own longest sequence."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = int(pad_token_id)

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        if not items:  # a process's empty evaluation batch (``LengthSortedBatches(empty_when_idle=True)``)
            empty = torch.zeros((0, 0), dtype=torch.long)
            return {"input_ids": empty, "attention_mask": empty.clone(), "pool_index": torch.zeros(0, dtype=torch.long)}
        width = max(len(item["input_ids"]) for item in items)
        input_ids = torch.full((len(items), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(items), width), dtype=torch.long)
        for i, item in enumerate(items):
            ids = torch.from_numpy(np.asarray(item["input_ids"], dtype=np.int64))
            input_ids[i, : ids.numel()] = ids
            attention_mask[i, : ids.numel()] = 1
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "pool_index": torch.tensor([item["pool_index"] for item in items], dtype=torch.long),
        }
        if "labels" in items[0]:
            batch["labels"] = torch.from_numpy(np.stack([item["labels"] for item in items]).astype(np.float32))
        return batch


class LengthSortedBatches(torch.utils.data.Sampler):
    """Positions grouped into batches of similar length (longest first), for fast padded inference.

    A batch holds at most ``batch_size`` rows and, with ``max_tokens``, at most
    ``max_tokens`` padded tokens (rows × the batch's longest row; a row longer than
    ``max_tokens`` still gets a batch of its own): short rows then travel in wide
    batches and long rows in narrow ones, so a batch's memory and time stay level.

    ``shard = (rank, world)`` keeps every ``world``-th batch starting at ``rank``: the
    processes of a DDP run together see each batch exactly once (no padding
    duplicates, no row lost), and every batch is the one a single process would
    have built, so per-batch results do not depend on the number of processes.

    With fewer batches than processes (a dev set smaller than one batch) some shards have
    none; with ``empty_when_idle`` such a shard yields one empty batch instead. Evaluation
    needs it: Lightning refuses a loader with no batch on one process of several, and the
    first evaluation forward of a DDP fit syncs buffers, a collective every process must
    join. The empty batch holds no row, so metrics still count each row once.
    """

    def __init__(
        self, lengths: np.ndarray, batch_size: int, shard: tuple[int, int] = (0, 1), max_tokens: int | None = None,
        empty_when_idle: bool = False,
    ) -> None:
        self.batch_size = int(batch_size)
        self.empty_when_idle = empty_when_idle
        self.order = np.argsort(-np.asarray(lengths), kind="stable")
        self.rank, self.world = shard
        if not 0 <= self.rank < self.world:
            raise ValueError(f"shard rank {self.rank} outside a world of {self.world}")
        self.bounds = _batch_bounds(np.asarray(lengths)[self.order], self.batch_size, max_tokens)

    def _batches(self) -> range:
        return range(self.rank, self.bounds.size - 1, self.world)

    def __iter__(self):
        batches = self._batches()
        if not batches and self.empty_when_idle:
            yield []
        for b in batches:
            yield self.order[self.bounds[b] : self.bounds[b + 1]].tolist()

    def __len__(self) -> int:
        n = len(self._batches())
        return max(n, 1) if self.empty_when_idle else n

    def positions(self) -> np.ndarray:
        """Every position this shard yields, ascending."""
        parts = [self.order[self.bounds[b] : self.bounds[b + 1]] for b in self._batches()]
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def _batch_bounds(sorted_lengths: np.ndarray, batch_size: int, max_tokens: int | None) -> np.ndarray:
    """Start of every batch over rows sorted longest first, and the end: (batches + 1,) ascending."""
    n = sorted_lengths.size
    if max_tokens is None:
        return np.append(np.arange(0, n, batch_size), n).astype(np.int64)
    bounds, start = [0], 0
    while start < n:
        rows = int(max_tokens) // max(1, int(sorted_lengths[start]))  # the first row is the batch's longest
        start += max(1, min(batch_size, rows))
        bounds.append(min(start, n))
    return np.asarray(bounds, dtype=np.int64)
