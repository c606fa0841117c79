"""Reading a dataset's files into splits and a label schema, without torch or Lightning.

``DataFiles`` is the reading half of ``ActiveDataModule`` (which adds tokenization, the
label state and the loaders): ``lit_al label`` reads a run's pool with it alone, so
importing answers does not start torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from .readers import position_unit, read_table, resolve_path, without_empty_texts
from .schema import LabelSchema, read_label_file

if TYPE_CHECKING:
    from .tokens import TokenizedTexts


@dataclass
class Split:
    """One split: ids, texts and gold class names (model classes) per row, in file order.

    ``path`` is the file it was read from; ``source`` names it in messages (with the carved or
    sampled part, e.g. ``train.csv (split dev)``). ``gold`` is None for an unlabeled pool
    (no label column, or an empty one): its labels come from a person.
    """

    name: str
    source: str
    path: str
    ids: list[str]
    texts: list[str]
    gold: list[tuple[str, ...]] | None
    tokens: TokenizedTexts | None = field(default=None, repr=False)
    #: where each row is in its file, for messages: ``f"{unit} {positions[i]} of {source}"``
    positions: list[int] = field(default_factory=list, repr=False)
    unit: str = "row"

    def where(self, i: int) -> str:
        """Row ``i`` as a person finds it in the file (``line 5 of train.csv``)."""
        position = self.positions[i] if self.positions else i + 1
        return f"{self.unit} {position} of {self.source}"

    def __len__(self) -> int:
        return len(self.ids)


class DataFiles:
    """The pool, dev and test files read into ``Split``s, and the label schema (options: see ``ActiveDataModule``)."""

    def __init__(
        self,
        train: str,
        dev: str | None = None,
        test: str | None = None,
        *,
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
        max_rows: dict[str, int] | None = None,
        drop_empty_texts: bool = False,
    ) -> None:
        super().__init__()  # ActiveDataModule: the LightningDataModule next in line
        self.train_path, self.dev_path, self.test_path = train, dev, test
        self.format = format
        self.text_column, self.label_column, self.id_column = text_column, label_column, id_column
        self.multi_label = multi_label
        self.label_separator = label_separator
        self.labels_option = labels
        self.target_label = target_label
        self.positive_label = positive_label
        self.split_fractions = dict(split or {})
        unknown = set(self.split_fractions) - {"dev", "test"}
        if unknown or any(not 0 < f < 1 for f in self.split_fractions.values()) or sum(self.split_fractions.values()) >= 1:
            raise ConfigError(f"data.split must map dev/test to fractions in (0, 1) summing below 1, got {split}")
        self.split_seed = split_seed
        self.max_rows = dict(max_rows or {})
        if set(self.max_rows) - {"train", "dev", "test"} or any(int(n) < 1 for n in self.max_rows.values()):
            raise ConfigError(f"data.max_rows must map train/dev/test to positive row counts, got {max_rows}")
        self.drop_empty_texts = bool(drop_empty_texts)
        self.schema: LabelSchema | None = None
        self.pool: Split | None = None
        self.dev: Split | None = None
        self.test: Split | None = None

    #: The options ``DataFiles`` takes (an ``ActiveDataModule``'s others are for training and scoring).
    OPTIONS = ("train", "dev", "test", "format", "text_column", "label_column", "id_column", "multi_label",
               "label_separator", "labels", "target_label", "positive_label", "split", "split_seed", "max_rows",
               "drop_empty_texts")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "DataFiles":
        """Read-only files from a data module's options (a saved ``data`` section): the reading ones are used."""
        return cls(**{name: options[name] for name in cls.OPTIONS if name in options})

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        """Read and validate every split and build the label schema (no tokenization); idempotent."""
        if self.pool is not None:
            return
        frames: dict[str, tuple[str, pd.DataFrame]] = {}
        paths: dict[str, str] = {}
        for name, path in (("train", self.train_path), ("dev", self.dev_path), ("test", self.test_path)):
            if path:
                frame = self.read_split(path)
                self._check_columns(path, frame, optional_labels=name == "train")
                frame = without_empty_texts(frame, self.text_column, str(path), self.position_unit(path), self.drop_empty_texts)
                frames[name] = (str(path), frame)
                paths[name] = str(path)
        train_source, train_frame = frames["train"]
        carve = {name: f for name, f in self.split_fractions.items() if name not in frames}
        if carve:
            rng = np.random.default_rng(self.split_seed)
            order = rng.permutation(len(train_frame))
            start = 0
            for name in ("dev", "test"):
                if name in carve:
                    size = int(round(carve[name] * len(train_frame)))
                    frames[name] = (f"{train_source} (split {name})", train_frame.iloc[np.sort(order[start : start + size])])
                    paths[name] = train_source
                    start += size
            frames["train"] = (train_source, train_frame.iloc[np.sort(order[start:])])
        for position, name in enumerate(("train", "dev", "test")):
            limit = self.max_rows.get(name)
            if name in frames and limit is not None and len(frames[name][1]) > limit:
                source, frame = frames[name]
                keep = np.sort(np.random.default_rng([self.split_seed, position]).permutation(len(frame))[:limit])
                frames[name] = (f"{source} (split sample of {limit}, seed {self.split_seed})", frame.iloc[keep])
        self.schema = self._build_schema(frames)
        splits = {name: self._to_split(name, source, paths[name], frame) for name, (source, frame) in frames.items()}
        self._check_unique_ids(splits)
        self.pool, self.dev, self.test = splits["train"], splits.get("dev"), splits.get("test")
        if len(self.pool) == 0:
            raise DataError(f"{self.train_path}: the pool is empty")

    def read_split(self, path: str) -> pd.DataFrame:
        """One split's table: a column per field, text values (``None`` when missing), and the
        index giving where each row is in its file (for messages, see ``position_unit``).

        Override it in a subclass to read another format.
        """
        return read_table(path, self.format)

    def _check_columns(self, path: str, frame: pd.DataFrame, optional_labels: bool = False) -> None:
        """The text, id and label columns must exist (the pool's label column may be absent: an unlabeled pool)."""
        wanted = [self.text_column] + ([] if optional_labels else [self.label_column]) + ([self.id_column] if self.id_column else [])
        for column in wanted:
            if column not in frame.columns:
                raise DataError(f"{path}: missing column {column!r}; columns are {list(frame.columns)}")

    def _build_schema(self, frames: dict[str, tuple[str, pd.DataFrame]]) -> LabelSchema:
        option = self.labels_option
        if isinstance(option, str):
            names = read_label_file(resolve_path(option))
        elif option:
            names = tuple(option)
        else:
            beside = resolve_path(self.train_path).parent / "labels.txt"
            if not resolve_path(self.train_path).is_dir() and beside.exists():
                names = read_label_file(beside)
            else:
                names = self._discover_labels(frames)
        return LabelSchema(names, self.multi_label, self.target_label, self.positive_label)

    def _discover_labels(self, frames: dict[str, tuple[str, pd.DataFrame]]) -> tuple[str, ...]:
        found: set[str] = set()
        for _, frame in frames.values():
            if self.label_column not in frame:
                continue
            for raw in frame[self.label_column]:
                if raw is None:
                    continue
                if self.multi_label:
                    parts = raw if isinstance(raw, (list, tuple, np.ndarray)) else str(raw).split(self.label_separator)
                    found.update(str(p).strip() for p in parts if p is not None and str(p).strip())
                elif str(raw).strip():
                    found.add(str(raw).strip())
        if not found:
            raise DataError(f"{self.train_path}: no labels anywhere to learn the label names from; "
                            "list them in data.labels (or a labels.txt beside the pool file)")
        return tuple(sorted(found))

    def position_unit(self, path: str) -> str:
        """``line`` when ``read_split``'s index counts file lines, ``row`` when it counts rows."""
        return position_unit(path, self.format)

    def _to_split(self, name: str, source: str, path: str, frame: pd.DataFrame) -> Split:
        assert self.schema is not None
        texts: list[str] = []
        gold: list[tuple[str, ...]] | None = []
        # one tuple per distinct label string, shared by its rows: a 10^6-row pool holds a few
        # label tuples instead of 10^6 (56 MiB) and parses each distinct value once
        parsed: dict[str, tuple[str, ...]] = {}
        positions = [int(i) for i in frame.index]  # lines (or rows) of the source file, also for carved splits
        unit = self.position_unit(path)
        labels = frame[self.label_column] if self.label_column in frame else None
        if name == "train" and labels is not None and all(_is_missing(raw) for raw in labels):
            labels = None  # an empty label column: an unlabeled pool
        for row, (position, raw_text) in enumerate(zip(positions, frame[self.text_column])):
            where = f"{unit} {position} of {source}"
            text = "" if raw_text is None else str(raw_text)
            if not text.strip():
                raise DataError(f"{where}: empty text")
            texts.append(text)
            if labels is not None:
                raw_label = labels.iloc[row]
                names = parsed.get(raw_label) if isinstance(raw_label, str) else None
                if names is None:
                    names = self.schema.model_names(self.schema.parse(raw_label, self.label_separator, where))
                    if isinstance(raw_label, str):
                        parsed[raw_label] = names
                gold.append(names)
        if labels is None:
            gold = None
        if self.id_column:
            ids = ["" if x is None else str(x) for x in frame[self.id_column]]
        else:
            ids = [f"{name}-{i}" for i in positions]
        return Split(name, source, path, ids, texts, gold, positions=positions, unit=unit)

    @staticmethod
    def _check_unique_ids(splits: dict[str, Split]) -> None:
        seen: dict[str, str] = {}
        for split in splits.values():
            for row, example_id in enumerate(split.ids):
                if not example_id:
                    raise DataError(f"{split.where(row)}: empty id")
                if example_id in seen:
                    raise DataError(f"{split.where(row)}: duplicate id {example_id!r} (also in {seen[example_id]})")
                seen[example_id] = split.source


def _is_missing(raw: object) -> bool:
    """An empty cell: None, NaN, an empty or blank string, an empty list."""
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return True
    if isinstance(raw, (list, tuple, np.ndarray)):
        return len(raw) == 0
    return not str(raw).strip()
