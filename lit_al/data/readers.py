"""Read labeled tables (CSV, TSV, JSONL, Parquet, Hugging Face ``save_to_disk`` folders).

Every format is read as text: a number stays as written (``1`` is ``"1"``, never ``"1.0"``),
a text ``NA`` stays ``"NA"``, and only a JSON/Parquet null (or an empty CSV cell) is missing
(``None``). Lists stay lists (multi-label columns). The frame's index is where each row is in
its file, counted as an editor does: the line for CSV, TSV and JSONL, the 1-based row for
Parquet and dataset folders (``position_unit``). Paths may start with ``builtin:`` to name a
dataset shipped inside the package (``builtin:trec/train.csv``).

CSV and TSV are read with Python's ``csv`` module, record by record, so a row's line is the one
an editor shows even after texts that span several lines, and a row with more fields than the
header (an unquoted text holding the delimiter) is refused with its line instead of being
shifted into an index. A ``.csv`` whose header line is one field holding ``;``, a tab or ``|``
(Excel writes ``;`` in many locales) is read with that delimiter (``csv.Sniffer`` on the header
line, restricted to ``CSV_DELIMITERS``).
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import hashlib
import io
import itertools
import json
import logging
import lzma
import math
import zipfile
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

import pandas as pd

from ..builtin import DATASETS, resolve
from ..errors import DataError

log = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "jsonl", "parquet", "hf")
#: Delimiters a CSV/TSV header line may use (comma, semicolon, tab, pipe).
CSV_DELIMITERS = ",;\t|"
#: Largest CSV field read (the csv module's default, 128 KiB, is below a long document).
CSV_FIELD_LIMIT = 1 << 30
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def resolve_path(path: str | Path) -> Path:
    """Resolve ``builtin:`` paths to the packaged datasets (``lit_al.builtin``); other paths stay as given."""
    return resolve(path, DATASETS)


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
            return _read_delimited(resolved, path, kind)
        if kind == "jsonl":
            return _read_jsonl(resolved, path)
        if kind == "parquet":
            import pyarrow.parquet as pq

            return _as_text(pq.read_table(resolved).to_pydict())
        return _read_hf_folder(resolved)
    except DataError:
        raise
    except UnicodeDecodeError:
        raise DataError(f"{path}: is not UTF-8 text; save it as UTF-8 (in Excel: CSV UTF-8)") from None
    except (ValueError, pd.errors.ParserError, OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as exc:
        raise DataError(f"{path}: cannot be read as {kind}: {exc}".splitlines()[0]) from None


def position_unit(path: str | Path, fmt: str | None = None) -> str:
    """``line`` when the index of ``read_table`` counts file lines, else ``row``."""
    return "line" if detect_format(resolve_path(path), fmt) in ("csv", "tsv", "jsonl") else "row"


@contextlib.contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    """The file as UTF-8 text (a byte-order mark dropped), decompressed by its suffix, with
    ``newline=""`` as the csv module needs (line ends inside quoted texts stay as written)."""
    suffix = path.suffix.lower()
    openers = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    if suffix in openers:
        with openers[suffix](path, "rt", encoding="utf-8-sig", newline="") as handle:
            yield handle
    elif suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if not name.endswith("/")]
            if len(members) != 1:
                raise DataError(f"{path}: a .zip must hold exactly one file, it holds {len(members)}")
            with archive.open(members[0]) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    else:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            yield handle


def detect_delimiter(header_line: str, default: str) -> str:
    """The delimiter of a delimited file from its header line: ``default`` unless the header is a
    single field under it and ``csv.Sniffer`` finds one of ``CSV_DELIMITERS`` there."""
    if len(next(csv.reader([header_line], delimiter=default), [])) != 1:
        return default
    try:
        return csv.Sniffer().sniff(header_line, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:  # one column: nothing to detect
        return default


def _read_delimited(resolved: Path, path: str | Path, kind: str) -> pd.DataFrame:
    """A CSV/TSV as a frame of text cells indexed by the line each row starts on (see the module docstring).

    Blank lines are skipped; a row with fewer fields than the header gets empty cells (as pandas
    reads it); a row with more fields, a quote never closed, or a stray quote is one ``DataError``
    naming the line.
    """
    default = "\t" if kind == "tsv" else ","
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with _open_text(resolved) as handle:
        first = handle.readline()
        delimiter = detect_delimiter(first, default)
        if delimiter != default:
            log.info("%s: reading it as %s-separated (its header line)", path, _DELIMITER_NAMES[delimiter])
        quoting = csv.QUOTE_NONE if delimiter == "\t" and kind == "tsv" else csv.QUOTE_MINIMAL
        reader = csv.reader(itertools.chain([first], handle), delimiter=delimiter, quoting=quoting, strict=True)
        start = 1
        try:
            header = next(reader, None)
            if not header:
                raise DataError(f"{path}: empty file (no header line)")
            _check_header(header, path)
            width = len(header)
            columns: list[list[str]] = [[] for _ in header]
            lines: list[int] = []
            start = reader.line_num + 1
            for row in reader:
                if row:
                    if len(row) > width:
                        raise DataError(_extra_fields(path, start, len(row), width, delimiter))
                    row += [""] * (width - len(row))
                    for column, value in zip(columns, row):
                        column.append(value)
                    lines.append(start)
                start = reader.line_num + 1
        except csv.Error as exc:
            raise DataError(_csv_error(path, start, reader.line_num, exc)) from None
    frame = pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in zip(header, columns)})
    frame.index = pd.Index(lines, dtype="int64") if lines else pd.RangeIndex(0)
    return frame


def _check_header(header: list[str], path: str | Path) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"line 1 of {path}: column {name!r} appears twice in the header")
        seen.add(name)


def _extra_fields(path: str | Path, line: int, found: int, width: int, delimiter: str) -> str:
    name = _DELIMITER_NAMES[delimiter]
    return (f"line {line} of {path}: {found} fields where the header has {width}; a text that holds a {name} "
            f"({delimiter!r}) must be in double quotes")


def _csv_error(path: str | Path, start: int, line: int, exc: csv.Error) -> str:
    message = str(exc)
    if "unexpected end of data" in message:
        return f"line {start} of {path}: a double quote opened in this row is never closed"
    if "expected after" in message:
        return f"line {line} of {path}: {message} (a double quote inside a quoted text is written twice: \"\")"
    return f"line {line} of {path}: {message}"


def is_blank_text(value: Any) -> bool:
    """A text cell that holds nothing to classify: missing, NaN, empty or whitespace only."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return not str(value).strip()


def blank_text_positions(frame: pd.DataFrame, column: str) -> list[int]:
    """The index entries (lines or rows, see ``read_table``) of ``frame``'s rows whose ``column`` is blank."""
    return [int(position) for position, value in zip(frame.index, frame[column]) if is_blank_text(value)]


def without_empty_texts(frame: pd.DataFrame, column: str, path: str, unit: str, drop: bool) -> pd.DataFrame:
    """``frame`` without its rows of blank text (``drop``, with a warning that counts them), or one
    ``DataError`` that counts them and names their first positions (``data.drop_empty_texts``)."""
    blank = blank_text_positions(frame, column)
    if not blank:
        return frame
    where = describe_positions(unit, blank)
    if not drop:
        if len(blank) == 1:
            raise DataError(f"{where} of {path}: empty text; fill it, or set data.drop_empty_texts: true to leave "
                            "rows without text out")
        raise DataError(f"{path}: {len(blank)} rows with an empty text ({where}); fill them, or set "
                        "data.drop_empty_texts: true to leave them out")
    log.warning("%s: left out %d row(s) with an empty text (%s; data.drop_empty_texts)", path, len(blank), where)
    return frame[~frame.index.isin(blank)]


def describe_positions(unit: str, positions: list[int], shown: int = 5) -> str:
    """``line 63``, ``lines 63, 70 and 81``, ``lines 63, 70, 81, 90, 95 and 12 more``."""
    if len(positions) == 1:
        return f"{unit} {positions[0]}"
    listed = ", ".join(str(p) for p in positions[:shown])
    if len(positions) > shown:
        return f"{unit}s {listed} and {len(positions) - shown} more"
    head, _, last = listed.rpartition(", ")
    return f"{unit}s {head} and {last}"


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
