"""``predict_file``: label new texts with a run's last model.

Texts are tokenized as in training (the run's ``data.max_length``), grouped into
length-sorted batches padded per batch, and scored in eval mode. The output table has one
row per input row, in input order: ``id``, ``text``, ``predicted`` (the argmax class; for
multi-label every class with ``p >= threshold``, joined by ``|``), ``confidence`` (the
predicted class's probability; for multi-label the predicted classes' probabilities, joined
by ``|``) and ``prob_<class>`` for every class. It is written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..data.readers import blank_text_positions, describe_positions, position_unit, read_table
from ..data.tokens import LengthSortedBatches, PadCollator, TokenDataset, tokenize_texts
from ..errors import ConfigError, DataError
from ..atomic import atomic_write_text
from ..model import RUN_MODEL_DIR, TextClassifier, load_run_model, load_tokenizer
from .run_files import check_run_dir, run_max_length


@dataclass(frozen=True)
class Texts:
    """The rows to label: ids and texts, in file order."""

    ids: list[str]
    texts: list[str]


def read_texts(path: str | Path, text_column: str = "text", id_column: str | None = None) -> Texts:
    """Ids and texts of a CSV/TSV/JSONL/Parquet file; ids are row numbers (from 1) when the file has no ``id_column``.

    ``id_column=None`` takes an ``id`` column if there is one; a named column must exist.
    """
    frame = read_table(path)
    if text_column not in frame.columns:
        raise DataError(f"{path}: missing column {text_column!r} (set --text_column); columns are {list(frame.columns)}")
    if id_column is not None and id_column not in frame.columns:
        raise DataError(f"{path}: missing column {id_column!r} (set --id_column); columns are {list(frame.columns)}")
    id_column = id_column or ("id" if "id" in frame.columns else None)
    blank = blank_text_positions(frame, text_column)
    if blank:
        where = describe_positions(position_unit(path), blank)
        raise DataError(f"{path}: {len(blank)} row(s) with an empty text ({where}); fill or remove them")
    texts = [str(raw) for raw in frame[text_column]]
    ids = [str(x) for x in frame[id_column]] if id_column else [str(i) for i in range(1, len(texts) + 1)]
    if not texts:
        raise DataError(f"{path}: no rows to label")
    return Texts(ids, texts)


def predict_probs(model: TextClassifier, tokenizer, texts: list[str], *, max_length: int, batch_size: int = 64,
                  progress: bool = True) -> np.ndarray:
    """(n, C) probabilities of ``texts`` in input order (softmax, or sigmoid for multi-label)."""
    from tqdm.auto import tqdm

    tokens = tokenize_texts(tokenizer, texts, max_length)
    dataset = TokenDataset(tokens, np.arange(len(texts)))
    collate = PadCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    probs = np.zeros((len(texts), model.num_labels), dtype=np.float32)
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode(), tqdm(total=len(texts), unit="text", desc="predict", disable=not progress) as bar:
        for positions in LengthSortedBatches(tokens.lengths, batch_size):
            batch = collate([dataset[i] for i in positions])
            inputs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask")}
            probs[batch["pool_index"].numpy()] = model.probabilities(model(inputs)).float().cpu().numpy()
            bar.update(len(positions))
    return probs


def prediction_table(rows: Texts, probs: np.ndarray, label_names: list[str], multi_label: bool,
                     threshold: float) -> pd.DataFrame:
    """The output table (see the module docstring) for ``probs`` (n, C)."""
    if multi_label:
        chosen = [np.flatnonzero(p >= threshold) for p in probs]
        predicted = ["|".join(label_names[j] for j in js) for js in chosen]
        confidence = ["|".join(f"{p[j]:.6f}" for j in js) for p, js in zip(probs, chosen)]
    else:
        best = probs.argmax(axis=1)
        predicted = [label_names[j] for j in best]
        confidence = probs[np.arange(len(best)), best]
    table = pd.DataFrame({"id": rows.ids, "text": rows.texts, "predicted": predicted, "confidence": confidence})
    for j, name in enumerate(label_names):
        table[f"prob_{name}"] = probs[:, j]
    return table


def check_output_file(path: str | Path) -> None:
    """Refuse an ``--output`` that cannot become the predictions file, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--output {path}: is a directory; name the CSV file to write (e.g. {path / 'predictions.csv'})")
    existing = next(parent for parent in path.absolute().parents if parent.exists())
    if not existing.is_dir():
        raise ConfigError(f"--output {path}: {existing} is a file, not a directory")


def predict_file(run_dir: str | Path, input_path: str | Path, output_path: str | Path, *, text_column: str = "text",
                 id_column: str | None = None, batch_size: int = 64, progress: bool = True) -> pd.DataFrame:
    """Label the texts of ``input_path`` with the last model of ``run_dir``; write and return the table."""
    if batch_size < 1:
        raise ConfigError(f"--batch_size must be positive, got {batch_size}")
    run_dir = check_run_dir(run_dir)
    check_output_file(output_path)
    rows = read_texts(input_path, text_column, id_column)
    model, meta = load_run_model(run_dir / RUN_MODEL_DIR)
    if torch.cuda.is_available():
        model.to("cuda")
    tokenizer = load_tokenizer(meta["model"])
    probs = predict_probs(model, tokenizer, rows.texts, max_length=run_max_length(run_dir), batch_size=batch_size,
                          progress=progress)
    table = prediction_table(rows, probs, list(model.label_names), model.multi_label, model.threshold)
    atomic_write_text(output_path, table.to_csv(index=False))
    return table
