"""Read labeled tables (CSV, TSV, JSONL, Parquet, Hugging Face ``save_to_disk`` folders).

Everything is read as strings (no NaN guessing: a text ``NA`` stays ``"NA"``).
Paths may start with ``builtin:`` to name a dataset shipped inside the package
(``builtin:trec/train.csv``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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
        if kind == "csv":
            return pd.read_csv(resolved, dtype=str, keep_default_na=False, encoding="utf-8")
        if kind == "tsv":
            return pd.read_csv(resolved, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8", quoting=3)
        if kind == "jsonl":
            frame = pd.read_json(resolved, lines=True, dtype=False)
            return frame
        if kind == "parquet":
            return pd.read_parquet(resolved)
        return _read_hf_folder(resolved)
    except DataError:
        raise
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError) as exc:
        raise DataError(f"{path}: cannot be read as {kind}: {exc}".splitlines()[0]) from None


def _read_hf_folder(path: Path) -> pd.DataFrame:
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise DataError(f"{path}: reading a Hugging Face dataset folder needs the 'datasets' package (pip install datasets)") from None
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        raise DataError(f"{path}: is a DatasetDict; point data.train/dev/test at one split folder each")
    return loaded.to_pandas()


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
