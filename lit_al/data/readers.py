"""Read labeled tables (CSV, TSV, JSONL, Parquet, Hugging Face ``save_to_disk`` folders).

Every format is read as text: a number stays as written (``1`` is ``"1"``, never ``"1.0"``),
a text ``NA`` stays ``"NA"``, and only a JSON/Parquet null (or an empty CSV cell) is missing
(``None``). Lists stay lists (multi-label columns). The frame's index is where each row is in
its file, counted as an editor does: the line for CSV, TSV and JSONL, the 1-based row for
Parquet and dataset folders (``position_unit``). Paths may start with ``builtin:`` to name a
dataset shipped inside the package (``builtin:trec/train.csv``).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from ..errors import DataError

BUILTIN_PREFIX = "builtin:"
FORMATS = ("csv", "tsv", "jsonl", "parquet", "hf")


def builtin_root() -> Path:
    return Path(__file__).resolve().parent.parent / "datasets"


def resolve_path(path: str | Path) -> Path:
    """Resolve ``builtin:`` paths to the packaged datasets; other paths stay as given."""
    text = str(path)
    if text.startswith(BUILTIN_PREFIX):
        return builtin_root() / text[len(BUILTIN_PREFIX):]
    return Path(text).expanduser()


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise DataError(f"{path}: unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    if path.is_dir():
        return "hf"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz"):
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    mapping = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
    if ext not in mapping:
        raise DataError(f"{path}: cannot tell the file format from its name; set data.format to one of {', '.join(FORMATS)}")
    return mapping[ext]


def read_table(path: str | Path, fmt: str | None = None) -> pd.DataFrame:
    """Read one split into a DataFrame of strings (lists stay lists for multi-label columns)."""
    resolved = resolve_path(path)
    if not resolved.exists():
        raise DataError(f"{path}: file not found")
    kind = detect_format(resolved, fmt)
    try:
        if kind in ("csv", "tsv"):
            options = {"sep": "\t", "quoting": 3} if kind == "tsv" else {}
            frame = pd.read_csv(resolved, dtype=str, keep_default_na=False, encoding="utf-8", **options)
            frame.index = pd.RangeIndex(2, len(frame) + 2)  # line 1 is the header
            return frame
        if kind == "jsonl":
            return _read_jsonl(resolved, path)
        if kind == "parquet":
            import pyarrow.parquet as pq

            return _as_text(pq.read_table(resolved).to_pydict())
        return _read_hf_folder(resolved)
    except DataError:
        raise
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError) as exc:
        raise DataError(f"{path}: cannot be read as {kind}: {exc}".splitlines()[0]) from None


def position_unit(path: str | Path, fmt: str | None = None) -> str:
    """``line`` when the index of ``read_table`` counts file lines, else ``row``."""
    return "line" if detect_format(resolve_path(path), fmt) in ("csv", "tsv", "jsonl") else "row"


def _text(value: Any) -> Any:
    """A cell as text: None stays None (missing), lists become lists of text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy arrays and scalars
        return _text(value.tolist())
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_text(columns: dict[str, list], index: list[int] | None = None) -> pd.DataFrame:
    n = len(next(iter(columns.values()), []))
    frame = pd.DataFrame({name: pd.Series([_text(v) for v in values], dtype=object) for name, values in columns.items()})
    frame.index = pd.Index(index) if index is not None else pd.RangeIndex(1, n + 1)
    return frame


def jsonl_records(lines: Iterable[str], path: str | Path) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for every non-blank line; one ``DataError`` naming the line otherwise."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"line {number} of {path}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"line {number} of {path}: expected a JSON object, got {type(record).__name__}")
        yield number, record


def _read_jsonl(resolved: Path, path: str | Path) -> pd.DataFrame:
    records: list[dict] = []
    lines: list[int] = []
    with open(resolved, encoding="utf-8") as handle:
        for number, record in jsonl_records(handle, path):
            records.append(record)
            lines.append(number)
    names = list(dict.fromkeys(key for record in records for key in record))
    return _as_text({name: [record.get(name) for record in records] for name in names}, lines)


def _read_hf_folder(path: Path) -> pd.DataFrame:
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DataError(f"{path}: reading a Hugging Face dataset folder needs the 'datasets' package (pip install datasets)") from None
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        raise DataError(f"{path}: is a DatasetDict; point data.train/dev/test at one split folder each")
    return _as_text(loaded.to_dict())


def file_fingerprint(path: str | Path) -> str:
    """SHA-256 of a file's bytes (or of every file of a folder), for cache keys."""
    resolved = resolve_path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in resolved.rglob("*") if p.is_file()) if resolved.is_dir() else [resolved]
    for file in files:
        digest.update(str(file.relative_to(resolved) if resolved.is_dir() else file.name).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
