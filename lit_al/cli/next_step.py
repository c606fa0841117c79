"""What the command line tells a person to do next while a batch waits for their labels (fit, query, label)."""

from __future__ import annotations

from pathlib import Path


def batch_line(run_dir: Path, round_index: int, left: int, size: int) -> str:
    """What to do next when a person has the batch of ``round_index``."""
    folder = run_dir / "rounds" / f"round_{round_index:03d}"
    return (f"{left} of {size} items to label: fill {folder / 'to_label.csv'} (or use "
            f"label_studio_tasks.json / to_label.jsonl there), then run: lit_al label {run_dir} FILE "
            f"&& lit_al query --resume {run_dir}")


def waiting_line(run_dir: Path, state) -> str:
    """What to do next when a person has the batch."""
    return batch_line(run_dir, state.pending.round, len(state.open_pending()), len(state.pending.pool_indices))
