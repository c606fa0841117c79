"""Label schema: label names in a fixed order, single-label, multi-label and one-vs-rest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class LabelSchema:
    """The classes a model predicts, in order.

    ``source_names`` are the label names found in the data files; ``names`` are
    the model's classes. They differ only in one-vs-rest mode, where the model
    predicts ``[rest, target]`` (positive class index 1).
    """

    source_names: tuple[str, ...]
    multi_label: bool = False
    target_label: str | None = None
    positive_label: str | None = None

    def __post_init__(self) -> None:
        if len(set(self.source_names)) != len(self.source_names):
            raise DataError(f"label names are not unique: {list(self.source_names)}")
        if self.target_label is not None:
            if self.multi_label:
                raise DataError("data.target_label (one-vs-rest) needs a single-label dataset")
            if self.target_label not in self.source_names:
                raise DataError(f"data.target_label {self.target_label!r} is not a label name; known: {list(self.source_names)}")
        if self.positive_label is not None and self.positive_label not in self.names:
            raise DataError(f"data.positive_label {self.positive_label!r} is not one of the classes {list(self.names)}")
        if not self.multi_label and len(self.names) < 2:
            raise DataError(f"a classifier needs at least two classes, got {list(self.names)}")

    @property
    def names(self) -> tuple[str, ...]:
        if self.target_label is not None:
            return (f"not_{self.target_label}", self.target_label)
        return self.source_names

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def positive_index(self) -> int | None:
        """Class whose precision/recall/F1 are reported (one-vs-rest target, or ``positive_label``)."""
        if self.positive_label is not None:
            return self.names.index(self.positive_label)
        if self.target_label is not None:
            return 1
        return None

    # ------------------------------------------------------------ encoding
    def parse(self, raw: object, separator: str, where: str) -> tuple[str, ...]:
        """Source label names of one row (a list, or a separator-joined string for multi-label)."""
        if self.multi_label:
            if isinstance(raw, (list, tuple, np.ndarray)):
                parts = [str(x).strip() for x in raw if x is not None]
            else:
                text = "" if raw is None else str(raw)
                parts = [p.strip() for p in text.split(separator)] if text.strip() else []
            parts = [p for p in parts if p]
        else:
            if isinstance(raw, (list, tuple, np.ndarray)):
                raise DataError(f"{where}: a list of labels in a single-label dataset (set data.multi_label: true?)")
            text = "" if raw is None else str(raw).strip()
            if not text:
                raise DataError(f"{where}: empty label")
            parts = [text]
        unknown = [p for p in parts if p not in self.source_names]
        if unknown:
            raise DataError(f"{where}: label {unknown[0]!r} is not in the label schema {list(self.source_names)}")
        return tuple(parts)

    def encode(self, names: Sequence[str]) -> np.ndarray:
        """0/1 row over ``self.names`` for source names (one-hot for single-label)."""
        row = np.zeros(self.num_classes, dtype=np.float32)
        if self.target_label is not None:
            row[1 if names[0] == self.target_label else 0] = 1.0
            return row
        for name in names:
            row[self.source_names.index(name)] = 1.0
        return row

    def model_names(self, names: Sequence[str]) -> tuple[str, ...]:
        """Source label names -> class names of the model (maps one-vs-rest)."""
        return tuple(self.names[i] for i in np.flatnonzero(self.encode(names)))


def read_label_file(path: str | Path) -> tuple[str, ...]:
    """Label names, one per line (blank lines skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: label file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save the label file as UTF-8") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the label file ({exc.strerror})") from None
    names = tuple(line.strip() for line in lines if line.strip())
    if not names:
        raise DataError(f"{path}: no label names")
    return names
