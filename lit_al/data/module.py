"""``ActiveDataModule``: the pool, dev and test splits, tokenized once, plus the label state."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..errors import ConfigError, DataError
from .files import DataFiles, Split
from .readers import file_fingerprint
from .scenarios import InitialSet
from .state import LabelState
from .subsample import round_subsample_seed, subsample_pool
from .tokens import PadCollator, TokenDataset, cached_tokenize, LengthSortedBatches, tokenizer_fingerprint

log = logging.getLogger(__name__)


class ActiveDataModule(DataFiles, pl.LightningDataModule):
    """Labeled and unlabeled splits of a text-classification dataset.

    Args:
        train: the pool file (CSV, TSV, JSONL, Parquet, or a ``save_to_disk`` folder;
            ``builtin:trec/train.csv`` names a dataset shipped with lit_al).
        dev: optional dev file; with one, each round keeps its best epoch on it.
        test: optional test file.
        format: csv | tsv | jsonl | parquet | hf; by default from the file name.
        text_column: column holding the text.
        label_column: column holding the label (single-label) or labels (multi-label).
        id_column: column holding a unique example id; ``null`` numbers rows instead.
        multi_label: labels are sets (a list, or names joined by ``label_separator``).
        label_separator: separator of multi-label names in a string column.
        labels: label names in order: a list, or a path to a ``labels.txt``; by default
            ``labels.txt`` beside the train file if present, else the sorted names found.
        target_label: one-vs-rest: the task becomes ``target_label`` vs the rest.
        positive_label: class whose precision / recall / F1 are reported (binary tasks).
        split: fractions ``{dev: f, test: f}`` carved from the train file (seeded by
            ``split_seed``) for the splits that have no file.
        split_seed: seed of that split (and of ``max_rows``' samples).
        max_length: maximum tokens per text (longer texts are truncated).
        batch_size: training batch size.
        eval_batch_size: batch size for validation, test and pool prediction.
        eval_batch_tokens: also cap those batches at this many padded tokens (rows × the
            batch's longest row); ``null`` caps by rows only. Batches are length-sorted, so
            short texts then go in wide batches and long ones in narrow batches.
        num_workers: DataLoader workers.
        initial: how round 0's labeled set is drawn (see ``InitialSet``).
        cache_dir: where token ids are cached (default: ``<run_dir>/cache``).
        max_rows: at most this many rows per split, a random sample seeded by ``split_seed``
            (e.g. ``{train: 10000, dev: 1000}``; IBM capped large sets at 15k/3k/3k, BEAL
            used 10k-text pools); rows keep their file line numbers in error messages.
        pool_subsample: score only this many unlabeled pool rows per round, a uniform sample
            drawn afresh each round (``rows_to_score``); ``null`` scores the whole unlabeled pool.
            Bounds a round's inference time and output memory on large pools (IBM capped
            their pools); the budget is picked from the sample, so it must be at least the
            query size.
        drop_empty_texts: leave out rows whose text is empty or blank (of every split), with a
            warning that counts them and names their first lines; by default such rows are
            refused, with their count and first lines.
    """

    def __init__(
        self,
        train: str,
        dev: str | None = None,
        test: str | None = None,
        format: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        id_column: str | None = "id",
        multi_label: bool = False,
        label_separator: str = "|",
        labels: list[str] | str | None = None,
        target_label: str | None = None,
        positive_label: str | None = None,
        split: dict[str, float] | None = None,
        split_seed: int = 0,
        max_length: int = 128,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        eval_batch_tokens: int | None = None,
        num_workers: int = 0,
        initial: InitialSet = InitialSet(),
        cache_dir: str | None = None,
        max_rows: dict[str, int] | None = None,
        pool_subsample: int | None = None,
        drop_empty_texts: bool = False,
    ) -> None:
        if max_length < 2:
            raise ConfigError("data.max_length must be at least 2")
        if batch_size < 1 or eval_batch_size < 1:
            raise ConfigError("data.batch_size and data.eval_batch_size must be positive")
        if eval_batch_tokens is not None and (isinstance(eval_batch_tokens, bool) or not isinstance(eval_batch_tokens, int)
                                              or eval_batch_tokens < 1):
            raise ConfigError(f"data.eval_batch_tokens must be a positive number of tokens or null, got {eval_batch_tokens!r}")
        super().__init__(train, dev, test, format=format, text_column=text_column, label_column=label_column,
                         id_column=id_column, multi_label=multi_label, label_separator=label_separator, labels=labels,
                         target_label=target_label, positive_label=positive_label, split=split, split_seed=split_seed,
                         max_rows=max_rows, drop_empty_texts=drop_empty_texts)
        if pool_subsample is not None and (isinstance(pool_subsample, bool) or not isinstance(pool_subsample, int)
                                           or pool_subsample < 1):
            raise ConfigError(f"data.pool_subsample must be a positive number of rows or null, got {pool_subsample!r}")
        self.pool_subsample = pool_subsample
        self.max_length = max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.eval_batch_tokens = eval_batch_tokens
        self.num_workers = num_workers
        self.initial = initial if isinstance(initial, InitialSet) else InitialSet(**dict(initial))
        self.cache_dir = cache_dir

        self.state: LabelState | None = None
        self.tokenizer = None
        self.train_seed = 0

    def tokenize(self, tokenizer, cache_dir: str | Path | None = None) -> None:
        """Tokenize every split once (cached on disk under ``cache_dir``)."""
        if self.pool is None:
            self.load()
        self.tokenizer = tokenizer
        cache = self.cache_dir or cache_dir
        # costly (the vocabulary, the whole file): once per call and per file, not once per split
        fingerprint = tokenizer_fingerprint(tokenizer) if cache is not None else None
        file_hash = functools.cache(file_fingerprint)  # dev/test carved from train share its file
        for split in (self.pool, self.dev, self.test):
            if split is None:
                continue
            key = f"{file_hash(split.path)}|{split.source}|{self.text_column}" if cache is not None else None
            split.tokens = cached_tokenize(tokenizer, split.texts, self.max_length, key, cache, fingerprint)

    # -------------------------------------------------------------- task facts
    @property
    def num_classes(self) -> int:
        assert self.schema is not None
        return self.schema.num_classes

    def task_info(self) -> dict:
        """What the model must know about the task (linked into ``TextClassifier``)."""
        assert self.schema is not None
        return {
            "num_labels": self.schema.num_classes,
            "multi_label": self.schema.multi_label,
            "label_names": list(self.schema.names),
            "positive_index": self.schema.positive_index,
        }

    def encode_labels(self, labels: Sequence[tuple[str, ...]]) -> np.ndarray:
        assert self.schema is not None
        names = self.schema.names
        out = np.zeros((len(labels), len(names)), dtype=np.float32)
        for i, row in enumerate(labels):
            for name in row:
                out[i, names.index(name)] = 1.0
        return out

    def labeled_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Pool indices of the labeled examples and their 0/1 target rows (from the state)."""
        assert self.state is not None
        index = self.state.labeled_indices()
        return index, self.encode_labels([self.state.records[int(i)].labels for i in index])

    def rows_to_score(self, unlabeled: np.ndarray, run_seed: int, round_index: int) -> np.ndarray:
        """The unlabeled pool indices a round scores: all, or a ``pool_subsample`` sample seeded by (run seed, round)."""
        return subsample_pool(unlabeled, self.pool_subsample, round_subsample_seed(run_seed, round_index))

    # --------------------------------------------------------------- loaders
    @property
    def pool_is_labeled(self) -> bool:
        """Whether the pool carries gold labels (a simulation can answer from them)."""
        assert self.pool is not None
        return self.pool.gold is not None

    def _split_dataset(self, split: Split) -> TokenDataset:
        assert split.tokens is not None and split.gold is not None, "call tokenize() first"
        return TokenDataset(split.tokens, np.arange(len(split)), self.encode_labels(split.gold))

    def _collate(self) -> PadCollator:
        return PadCollator(self.tokenizer.pad_token_id if self.tokenizer is not None else 0)

    def _trainer_shard(self) -> tuple[int, int]:
        """(global rank, world size) of the attached Trainer; lit_al shards its own loaders under DDP."""
        trainer = getattr(self, "trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        assert self.pool is not None and self.pool.tokens is not None
        index, targets = self.labeled_targets()
        if index.size == 0:
            raise DataError("no labeled examples to train on")
        dataset = TokenDataset(self.pool.tokens, index, targets)
        rank, world = self._trainer_shard()
        if world > 1:  # Lightning calls set_epoch on it, so each epoch reshuffles
            sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=self.train_seed)
            return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, collate_fn=self._collate(),
                              num_workers=self.num_workers)
        generator = torch.Generator().manual_seed(self.train_seed)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=True, generator=generator,
                          collate_fn=self._collate(), num_workers=self.num_workers)

    def _eval_loader(self, split: Split | None) -> DataLoader | list:
        """Length-sorted batches (metrics do not depend on order, padding does), sharded by batch under DDP.

        Each row is in one batch of one process (torchmetrics sums its counts over the processes;
        a DistributedSampler would repeat rows to even the shards out). A process left without a
        batch (fewer batches than processes) gets one empty batch, which the model skips.
        """
        if split is None:
            return []
        assert split.tokens is not None, "call tokenize() first"
        batches = LengthSortedBatches(split.tokens.lengths, self.eval_batch_size, self._trainer_shard(),
                                      max_tokens=self.eval_batch_tokens, empty_when_idle=True)
        return DataLoader(self._split_dataset(split), batch_sampler=batches, collate_fn=self._collate(),
                          num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader(self.dev)

    def test_dataloader(self) -> DataLoader | list:
        return self._eval_loader(self.test)

    def predict_batches(self, rows: np.ndarray, shard: tuple[int, int] = (0, 1)) -> LengthSortedBatches:
        """The length-sorted batches (positions into ``rows``) over pool ``rows`` that shard ``shard`` runs."""
        assert self.pool is not None and self.pool.tokens is not None
        return LengthSortedBatches(
            self.pool.tokens.lengths[rows], self.eval_batch_size, shard, max_tokens=self.eval_batch_tokens
        )

    def predict_loader(self, rows: np.ndarray, shard: tuple[int, int] = (0, 1)) -> DataLoader:
        """Pool ``rows`` in length-sorted batches, the ``shard`` = (rank, world) of them one process runs.

        Its ``batch_sampler`` is the ``predict_batches(rows, shard)`` it was built with (``positions()``:
        the positions into ``rows`` this shard scores).
        """
        assert self.pool is not None and self.pool.tokens is not None
        rows = np.asarray(rows, dtype=np.int64)
        dataset = TokenDataset(self.pool.tokens, rows)
        batches = self.predict_batches(rows, shard)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=self._collate(), num_workers=self.num_workers)

