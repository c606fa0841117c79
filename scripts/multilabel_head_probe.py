#!/usr/bin/env python
"""Why a sigmoid head stays at the prior: the head alone, trained on frozen encoder features.

Encodes Reuters-21578 (``../shared/data/reuters``) once with the offline all-MiniLM-L6-v2
(``--max-length`` tokens, [CLS] and mask-aware mean pooling; cached in ``--cache``), then trains
``TextClassifier``'s head (dropout, a ``--hidden``-unit ReLU layer, dropout, 90 sigmoid outputs; BCE,
AdamW, linear decay, batches of 32) on ``n`` random training documents under each setting, and
prints micro- and macro-F1 on the 3,019 test documents at thresholds 0.5 and 0.3, with the mean
number of labels predicted per document at 0.5:

- the learning rate (``1e-4``, the BEAL config's, or ``1e-3``);
- the output biases: PyTorch's initialisation, or the labeled set's prior log-odds
  (``lit_al.model.prior_output_bias``, what ``model.output_bias: prior`` sets);
- the number of optimizer steps: 5 epochs (what ``trainer.max_epochs: 5`` gives; 20 steps at 100
  labels), or a fixed ``--steps``;
- BCE's ``pos_weight`` = negatives / positives per label (clipped at 100).

The encoder is frozen here, so this isolates the head and the loss; docs/multilabel.md has the
fine-tuned runs that confirm it. One thread; about 7 minutes to encode, then seconds per setting.

Usage::

    python scripts/multilabel_head_probe.py --sizes 100,500,2000,7770 --output docs/multilabel_head_probe.md
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multilabel_f1_score

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lit_al.data.readers import read_table  # noqa: E402
from lit_al.data.schema import LabelSchema, read_label_file  # noqa: E402
from lit_al.experiment.report import markdown_table  # noqa: E402
from lit_al.hub import resolve_model_path  # noqa: E402
from lit_al.model import DEFAULT_MODEL, ClassificationHead, mean_pooled, prior_output_bias  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "reuters"


@dataclass(frozen=True)
class Setting:
    lr: float
    bias: str  # "default" | "prior"
    steps: int | None  # None: 5 epochs
    pos_weight: bool = False

    def label(self) -> str:
        steps = f"{self.steps} steps" if self.steps else "5 epochs"
        return f"lr {self.lr:g}, bias {self.bias}, {steps}" + (", pos_weight" if self.pos_weight else "")


SETTINGS = [
    Setting(1e-4, "default", None), Setting(1e-4, "prior", None), Setting(1e-3, "default", None),
    Setting(1e-3, "prior", None), Setting(1e-3, "prior", 1000), Setting(1e-3, "prior", 1000, pos_weight=True),
]


def read_split(split: str, schema: LabelSchema) -> tuple[list[str], np.ndarray]:
    path = DATA / f"{split}.csv"
    frame = read_table(path)
    targets = [schema.encode(schema.parse(raw, "|", f"{path}:{line}")) for line, raw in frame["labels"].items()]
    return frame["text"].tolist(), np.stack(targets)


def encode(texts: list[str], max_length: int) -> dict[str, np.ndarray]:
    """[CLS] and mean-pooled last-layer states of the frozen encoder, rows in the input order."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_path(DEFAULT_MODEL)
    tokenizer, encoder = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = {"cls": np.zeros((len(texts), encoder.config.hidden_size), np.float32)}
    out["mean"] = np.zeros_like(out["cls"])
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            rows = order[start:start + 64]
            batch = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_length, padding=True,
                              return_tensors="pt")
            hidden = encoder(**batch).last_hidden_state
            out["cls"][rows] = hidden[:, 0].numpy()
            out["mean"][rows] = mean_pooled(hidden, batch["attention_mask"]).numpy()
    return out


def features(cache: Path, max_length: int, schema: LabelSchema) -> dict[str, dict[str, np.ndarray]]:
    result = {}
    for split in ("train", "test"):
        path = cache / f"reuters_{split}_{max_length}.npz"
        texts, targets = read_split(split, schema)
        if not path.exists():
            start = time.perf_counter()
            np.savez(path, **encode(texts, max_length))
            print(f"encoded {split}: {len(texts)} texts in {time.perf_counter() - start:.0f} s", flush=True)
        result[split] = dict(np.load(path), targets=targets)
    return result


def train_head(x: torch.Tensor, y: torch.Tensor, setting: Setting, hidden: int, seed: int, batch: int = 32) -> ClassificationHead:
    torch.manual_seed(seed)
    head = ClassificationHead(x.shape[1], y.shape[1], dropout=0.1, hidden_size=hidden)
    if setting.bias == "prior":
        with torch.no_grad():
            head.out.bias.copy_(prior_output_bias(y, multi_label=True))
    total = setting.steps or 5 * -(-x.shape[0] // batch)
    optimizer = torch.optim.AdamW(head.parameters(), lr=setting.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, (total - step) / total))
    positives = y.sum(0)
    pos_weight = ((y.shape[0] - positives) / positives.clamp_min(1)).clamp(max=100) if setting.pos_weight else None
    generator, step = torch.Generator().manual_seed(seed), 0
    while step < total:
        for rows in torch.randperm(x.shape[0], generator=generator).split(batch):
            loss = F.binary_cross_entropy_with_logits(head(x[rows]), y[rows], pos_weight=pos_weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step == total:
                break
    return head.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,200,500,2000,7770", help="labeled set sizes (7770 = the whole train split)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=str(REPO / "runs" / "probe_cache"))
    parser.add_argument("--output", default=None, help="also write the table as Markdown")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    schema = LabelSchema(read_label_file(DATA / "labels.txt"), multi_label=True)
    data = features(cache, args.max_length, schema)
    test_y = torch.from_numpy(data["test"]["targets"]).long()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        picked = np.random.default_rng(args.seed).permutation(len(data["train"]["targets"]))[:n]
        y = torch.from_numpy(data["train"]["targets"][picked])
        for pooling in ("cls", "mean"):
            x = torch.from_numpy(data["train"][pooling][picked])
            test_x = torch.from_numpy(data["test"][pooling])
            for setting in SETTINGS:
                head = train_head(x, y, setting, args.hidden, args.seed)
                with torch.no_grad():
                    probs = torch.sigmoid(head(test_x))
                row = {"labels": n, "pooling": pooling, "setting": setting.label()}
                for threshold in (0.5, 0.3):
                    for average in ("micro", "macro"):
                        row[f"{average}-F1 @{threshold}"] = float(multilabel_f1_score(
                            probs, test_y, num_labels=schema.num_classes, threshold=threshold, average=average, zero_division=0))
                row["labels per doc @0.5"] = float((probs >= 0.5).sum(1).float().mean())
                rows.append(row)
                print(" | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    table = pd.DataFrame(rows)
    header = (f"# Reuters-21578, frozen all-MiniLM-L6-v2 (max_length {args.max_length}), head only\n\n"
              f"`python scripts/multilabel_head_probe.py --sizes {args.sizes} --max-length {args.max_length}`; "
              f"seed {args.seed}, one thread.\n\n")
    text = header + markdown_table(table, {c: ".3f" for c in table.columns[3:]}) + "\n"
    print(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
