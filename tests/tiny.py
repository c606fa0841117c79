"""Tiny offline fixtures: a random BERT (with or without an MLM head) and small learnable datasets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

WORDS = {
    "sport": ["ball", "goal", "team", "match", "score", "coach"],
    "money": ["bank", "stock", "price", "market", "trade", "fund"],
    "tech": ["chip", "code", "robot", "data", "cloud", "app"],
}
FILLER = ["the", "a", "of", "and", "to", "in", "is", "new", "big", "today"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_tiny_bert(folder: Path, *, mlm: bool = False, hidden: int = 32, layers: int = 2, heads: int = 2,
                    rename: dict[str, str] | None = None) -> Path:
    """Write a randomly initialised tiny BERT (config, weights, fast tokenizer) to ``folder``.

    ``rename`` replaces vocabulary entries (same size), e.g. to make WordPiece continuations
    or a model whose vocabulary differs from another's.
    """
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = SPECIALS + FILLER + [w for words in WORDS.values() for w in words] + ["where", "city", "country", "river", "who", "what"]
    vocab = [(rename or {}).get(word, word) for word in vocab]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=2 * hidden, max_position_embeddings=64, type_vocab_size=2)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(1234)
    model = BertForMaskedLM(config) if mlm else BertModel(config)
    torch.random.set_rng_state(generator_state)
    model.save_pretrained(folder)
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(folder)
    return folder


def make_rows(n: int, *, seed: int, multi_label: bool = False, prefix: str = "ex") -> list[dict]:
    rng = np.random.default_rng(seed)
    classes = list(WORDS)
    rows = []
    for i in range(n):
        if multi_label:
            chosen = [c for c in classes if rng.random() < 0.4] or [classes[i % 3]]
        else:
            chosen = [classes[int(rng.integers(3))]]
        words = [str(rng.choice(WORDS[c])) for c in chosen for _ in range(2)] + list(rng.choice(FILLER, size=3))
        rng.shuffle(words)
        row = {"id": f"{prefix}-{i}", "text": " ".join(words)}
        if multi_label:
            row["labels"] = "|".join(c for c in classes if c in chosen)
        else:
            row["label"] = chosen[0]
        rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_dataset(folder: Path, *, multi_label: bool = False, n_pool: int = 80, n_dev: int = 24, n_test: int = 30) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_pool, 1), ("dev", n_dev, 2), ("test", n_test, 3)):
        write_csv(folder / f"{split}.csv", make_rows(n, seed=seed, multi_label=multi_label, prefix=split))
    (folder / "labels.txt").write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    return folder


def write_config(path: Path, *, model: Path, data: Path, run_dir: Path, multi_label: bool = False,
                 strategy: str | dict = "entropy", rounds: int = 2, query_size: int = 10, initial: dict | None = None,
                 extra_data: dict | None = None) -> Path:
    """A small fit config (YAML is a superset of JSON, so JSON is written)."""
    config = {
        "seed": 3,
        "run_dir": str(run_dir),
        "model": {"model_name_or_path": str(model), "lr": 1e-3},
        "data": {
            "train": str(data / "train.csv"), "dev": str(data / "dev.csv"), "test": str(data / "test.csv"),
            "label_column": "labels" if multi_label else "label", "multi_label": multi_label,
            "max_length": 16, "batch_size": 8, "eval_batch_size": 16,
            "initial": initial or {"scenario": "random", "n": 12},
            **(extra_data or {}),
        },
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
        "strategy": strategy,
        "loop": {"query_size": query_size, "rounds": rounds},
    }
    path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    return path
