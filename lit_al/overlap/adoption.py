"""Adopting a background job's proposal: the current round is committed and the proposed batch becomes pending.

One atomic write of ``state.json`` under the run lock is the commit point. Everything else
(the round's ``selected.csv``, the next batch's files, the model, the stop-set predictions,
the metrics row) is written first and is the same if written twice, so a kill at any moment
leaves either the old state (the adoption runs again, with the same result) or the new one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..atomic import atomic_write_bytes, atomic_write_text
from ..data.schema import LabelSchema
from ..data.state import LabelState, PendingQuery
from ..labeling import now_utc, write_batch_files
from ..loop import LoopConfig
from ..model import RUN_MODEL_DIR, RUN_MODEL_META, RUN_MODEL_WEIGHTS
from ..run_lock import run_lock
from ..rundir import STATE_FILE
from ..stopping import STOPPING_DIR
from .jobs import Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pool:
    """What adoption needs of the run's data: ids and texts by pool index, the label schema."""

    ids: Sequence[str]
    texts: Sequence[str]
    schema: LabelSchema
    label_separator: str = "|"


@dataclass(frozen=True)
class Adoption:
    """What an adoption did: ``status`` is adopted, not_ready (nothing answered / batch not complete),
    stale (the run moved on), synchronous (nothing to propose: the synchronous round decides) or busy."""

    status: str
    round: int | None = None
    size: int = 0
    message: str = ""


def next_batch(state: LabelState, proposal: dict[str, Any], config: LoopConfig) -> PendingQuery | None:
    """The proposed batch without anything labeled, skipped or in the pending batch meanwhile, cut to the budget."""
    payload = proposal.get("pending")
    if not payload:
        return None
    picked = PendingQuery.from_json(payload)
    pending_rows = set(state.pending.pool_indices) if state.pending is not None else set()
    excluded = set(state.records) | pending_rows | (set() if config.repropose_skipped else set(state.skipped))
    candidates = state.n_pool - len(excluded)
    budget = config.budget(picked.round, len(state.records), candidates)
    keep = [k for k, i in enumerate(picked.pool_indices) if i not in excluded][:budget]
    if not keep:
        return None
    return PendingQuery(picked.round, tuple(picked.pool_indices[k] for k in keep), tuple(picked.scores[k] for k in keep),
                        picked.strategy, tuple(picked.suggestions[k] for k in keep) if picked.suggestions else (),
                        tuple(picked.confidence[k] for k in keep) if picked.confidence else ())


def adopt(run_dir: Path, job: Job, proposal: dict[str, Any], pool: Pool, config: LoopConfig, *,
          require_complete: bool = True) -> Adoption:
    """Commit the pending round with its answers and make ``proposal``'s batch the next one (see the module docstring).

    ``require_complete``: adopt only once every item of the pending batch is answered (the page);
    False: once one is (``Session.query``: the unanswered ones go back to the pool, as in ``lit_al query``).
    """
    with run_lock(run_dir, writes=True, wait=False):
        state = LabelState.load(run_dir / STATE_FILE, pool.ids)
        pending = state.pending
        if state.finished or pending is None or pending.round != int(proposal["round"]):
            return Adoption("stale", message="the run moved on since the job started")
        answered = [i for i in pending.pool_indices if state.is_answered(i)]
        if not answered or (require_complete and len(answered) < len(pending.pool_indices)):
            return Adoption("not_ready", message="the pending batch is not answered yet")
        batch = next_batch(state, proposal, config)
        if batch is None:
            return Adoption("synchronous", message="nothing left to propose ahead: the synchronous round decides")
        _write_round_files(run_dir, state, pending, batch, pool)
        _install_model(run_dir, job, batch.round)
        # round r's row is the model that proposed batch r, as in a synchronous round
        _append_metrics(run_dir, {**proposal["row"], "round": batch.round, "answers": int(proposal["answers"])})
        state.pending = batch
        state.completed_rounds = pending.round + 1
        state.proposed_by[batch.round] = {
            "round": batch.round, "labeled": int(proposal["labeled"]), "time": proposal["trained_at"],
            "overlap": True, "job": int(proposal["job"]), "answers": int(proposal["answers"]), "adopted": now_utc(),
        }
        state.save()  # the commit point
    log.info("round %d committed; the batch of round %d (%d items) proposed by background job %s",
             pending.round, batch.round, len(batch.pool_indices), job.name)
    return Adoption("adopted", batch.round, len(batch.pool_indices))


def _write_round_files(run_dir: Path, state: LabelState, pending: PendingQuery, batch: PendingQuery, pool: Pool) -> None:
    """The committed round's ``selected.csv`` (as ``ActiveLoop._write_selection``) and the new batch's files."""
    import pandas as pd

    rows = list(pending.pool_indices)
    labels = [state.records[i].labels if i in state.records else () for i in rows]
    frame = pd.DataFrame({"rank": range(len(rows)), "pool_index": rows, "id": [pool.ids[i] for i in rows],
                          "score": list(pending.scores), "label": ["|".join(names) for names in labels]})
    atomic_write_text(_round_dir(run_dir, pending.round) / "selected.csv", frame.to_csv(index=False))
    items = [
        {"id": pool.ids[i], "text": pool.texts[i], "score": score,
         "suggestion": batch.suggestions[k] if batch.suggestions else (),
         "confidence": batch.confidence[k] if batch.confidence else None}
        for k, (i, score) in enumerate(zip(batch.pool_indices, batch.scores))
    ]
    write_batch_files(_round_dir(run_dir, batch.round), items, pool.schema, batch.round, pool.label_separator)


def _round_dir(run_dir: Path, round_index: int) -> Path:
    path = run_dir / "rounds" / f"round_{round_index:03d}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _install_model(run_dir: Path, job: Job, round_index: int) -> None:
    """The job's model becomes the run's last model (weights, then the JSON naming them: ``save_run_model``'s order)."""
    source = job.directory / RUN_MODEL_DIR
    if (source / RUN_MODEL_META).is_file() and (source / RUN_MODEL_WEIGHTS).is_file():
        atomic_write_bytes(run_dir / RUN_MODEL_DIR / RUN_MODEL_WEIGHTS, (source / RUN_MODEL_WEIGHTS).read_bytes())
        atomic_write_bytes(run_dir / RUN_MODEL_DIR / RUN_MODEL_META, (source / RUN_MODEL_META).read_bytes())
    predictions = job.directory / STOPPING_DIR / f"round_{round_index:03d}.npy"
    if predictions.is_file():
        atomic_write_bytes(run_dir / STOPPING_DIR / predictions.name, predictions.read_bytes())


def _append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    """The adopted model's row in ``metrics.csv`` (replacing an earlier row of the same round), as ``ActiveLoop`` writes it."""
    import pandas as pd

    path = run_dir / "metrics.csv"
    frame = pd.read_csv(path) if path.exists() else pd.DataFrame()
    if not frame.empty:
        frame = frame[frame["round"] != row["round"]]
    frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True) if not frame.empty else pd.DataFrame([row])
    atomic_write_text(path, frame.to_csv(index=False))

