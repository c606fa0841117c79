"""The labeling page's view of a run: what a client sees next, and its answers written to ``state.json``.

Nothing here caches labels: every request reads the label state from disk, so a
reload, a second tab, a second server or ``lit_al label`` in a terminal all see the
same truth. Answers go through ``session.import_answers`` (validated, atomic, under
the run lock: the same path as ``lit_al label``); an undo through ``labeling.retract``
under the same lock. One writer at a time inside the server too: the run lock is a
file lock, which two threads of one process must not race for.
"""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from ..config import as_dict, saved_config
from ..data.scenarios import keyword_pattern
from ..data.state import LabelState
from ..errors import ConfigError, DataError
from ..labeling import Answer, ImportSummary, retract
from ..run_lock import run_lock
from ..rundir import STATE_FILE
from ..session import import_answers, load_run_data
from .leases import Leases
from .rounds import RoundProgress, RoundRunner, read_progress_line

#: The skip marks the page offers (both are read by ``lit_al label`` too).
SKIP_REASONS = ("skip", "not sure")
KEYWORD_STRATEGY = "keyword_query"
#: What the page tells a person whose label contradicts an earlier answer (the page has no --overwrite).
CORRECT_ON_PAGE = "undo the first answer (Backspace, in the tab that gave it) and answer again"


def keyword_spans(pattern: re.Pattern | None, text: str) -> list[list[int]]:
    """``[start, end)`` spans of the keyword query's matches in ``text`` (empty matches left out).

    In code points (Python's string indices); the page maps them to JavaScript's UTF-16 units,
    so a text with characters outside the BMP (emoji) is highlighted where the match is.
    """
    if pattern is None:
        return []
    return [[m.start(), m.end()] for m in pattern.finditer(text) if m.end() > m.start()]


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


#: A suggestion is shown as a guess when its confidence is less than this share of the way from chance to certainty.
LOW_CONFIDENCE_MARGIN = 0.25


def chance_confidence(n_labels: int, multi_label: bool) -> float:
    """The confidence of a model that knows nothing: 1/C for max p over C classes (single-label);
    0.5 for the least certain yes/no decision min_j max(p_j, 1 - p_j) (multi-label)."""
    return 0.5 if multi_label else 1.0 / max(n_labels, 1)


def is_low_confidence(confidence: float, n_labels: int, multi_label: bool) -> bool:
    """Whether a suggestion is little better than a coin flip: ``(c - chance) / (1 - chance) < LOW_CONFIDENCE_MARGIN``.

    ``c`` is the run's confidence of the suggestion (max p, or min_j max(p_j, 1 - p_j) multi-label)
    and ``chance`` its value for a model that knows nothing (``chance_confidence``). Binary and
    multi-label: below 0.625; 3 classes: below 0.5; 6 classes: below 0.375.
    """
    chance = chance_confidence(n_labels, multi_label)
    if chance >= 1.0:
        return False
    return (confidence - chance) / (1.0 - chance) < LOW_CONFIDENCE_MARGIN


def retract_answer(run_dir: Path, ids: Sequence[str], example_id: str) -> bool:
    """Undo a person's answer to a pending item in one atomic write under the run lock; True if there was one."""
    with run_lock(run_dir, writes=True, wait=False):
        state = LabelState.load(run_dir / STATE_FILE, ids)
        undone = retract(state, example_id)
        if undone:
            state.save()
    return undone


class RunStore:
    """One run as the page sees it (see the module docstring).

    Args:
        run_dir: the run directory (``lit_al query`` made it).
        annotator: the name recorded with answers that do not carry one.
        lease_seconds: how long an item stays with a client that does not answer it.
        runner: runs the synchronous round (default: ``lit_al query --resume RUN_DIR`` in a child process).
        clock: monotonic seconds for the leases (tests pass a fake one).
        overlap: train in the background while the batch is answered and adopt the next batch when it is
            done (``lit_al.overlap``); None: the run's ``loop.overlap.enabled``.
    """

    def __init__(self, run_dir: Path, *, annotator: str | None = None, lease_seconds: float = 600.0,
                 runner: RoundRunner | None = None, clock: Callable[[], float] | None = None,
                 overlap: bool | None = None) -> None:
        self.run_dir = Path(run_dir)
        data = load_run_data(self.run_dir)  # one clear line for a folder that is not a run
        assert data.pool is not None and data.schema is not None
        self.ids: list[str] = list(data.pool.ids)
        self.texts: list[str] = list(data.pool.texts)
        self.schema = data.schema
        self.annotator = annotator
        initial = data.initial
        self.keyword = (keyword_pattern(initial.query, initial.case_sensitive)
                        if initial.scenario == KEYWORD_STRATEGY and initial.query else None)
        self.leases = Leases(lease_seconds) if clock is None else Leases(lease_seconds, clock)
        self.runner = runner or RoundRunner(self.run_dir)
        self._index = {example_id: i for i, example_id in enumerate(self.ids)}
        self._history: dict[str, list[str]] = {}  # client -> the items it answered, last last (for undo)
        self._write = threading.Lock()
        self._round_seen = -1
        self.background = self._background(data, overlap)

    def _background(self, data, overlap: bool | None):
        """The run's background trainings (``lit_al.overlap``), or None for the synchronous loop."""
        from ..loop import LoopConfig
        from ..overlap import Background, Pool

        config = LoopConfig(**as_dict(saved_config(self.run_dir).loop))
        if not (config.overlap.enabled if overlap is None else overlap):
            return None
        return Background(self.run_dir, Pool(self.ids, self.texts, self.schema, data.label_separator), config)

    # ------------------------------------------------------------------ reading
    def state(self) -> LabelState:
        return LabelState.load(self.run_dir / STATE_FILE, self.ids)

    def task(self) -> dict[str, Any]:
        """What does not change within a run: the labels (in their order, keys 1-9 then a-z), the task kind."""
        return {"labels": list(self.schema.source_names), "multi_label": bool(self.schema.multi_label),
                "annotator": self.annotator, "run_dir": str(self.run_dir)}

    def _progress(self, state: LabelState) -> dict[str, int]:
        pending = state.pending
        rows = pending.pool_indices if pending is not None else ()
        answered = len(rows) - len(state.open_pending())
        return {"batch_answered": answered, "batch_size": len(rows), "labeled": len(state.records),
                "skipped": len(state.skipped), "pool_size": state.n_pool}

    def _new_batch(self, state: LabelState) -> None:
        """A batch the server has not served before: leases and undo histories of the last one are void."""
        round_index = state.pending.round if state.pending is not None else -1
        if round_index != self._round_seen:
            self._round_seen = round_index
            self.leases.clear()
            self._history.clear()

    def view(self, client: str, *, take: bool = False, annotator: str | None = None,
             reclaim: bool = False) -> dict[str, Any]:
        """What ``client`` should see now: its item, or why there is none.

        Reading leases nothing: without ``take`` the view shows the item ``client`` already holds,
        if any. ``take`` leases it the next open item (``reclaim``: one that a closed or crashed tab
        of the same ``annotator`` holds, when every open item is held); see ``Leases``.
        """
        progress = self.runner.progress()
        base: dict[str, Any] = {"task": self.task(), "round_progress": progress.to_json()}
        if progress.state == "running":
            return {**base, "mode": "training", "message": "a round is training; the next batch comes when it is proposed"}
        state = self.state()
        if self.background is not None:  # a GET (no take) reads only: the schedule moves on POSTs
            state, waiting = self._tick(state) if take else (state, self._waiting(state, self.background.status()))
            base["round_progress"] = self.round_progress().to_json()
            if waiting is not None:
                return {**base, "mode": "training", "message": waiting, "progress": self._progress(state)}
        self._new_batch(state)
        base.update(progress=self._progress(state), can_undo=bool(self._history.get(client)))
        pending = state.pending
        if pending is None:
            if state.finished:
                return {**base, "mode": "finished", "message": "the run is finished: its budget is spent"}
            return {**base, "mode": "batch_done", "round": state.completed_rounds,
                    "message": "no batch is pending: train and propose one"}
        base["round"] = pending.round
        open_rows = state.open_pending()
        if not open_rows:
            failed = self.background is not None and self.background.status().state == "failed"
            why = f"{self.background.status().message}; " if failed else ""
            return {**base, "mode": "batch_done", "message": f"{why}the batch is labeled: train and propose the next one"}
        open_ids = [self.ids[i] for i in open_rows]
        who = annotator or self.annotator
        item = (self.leases.acquire(client, open_ids, who, reclaim) if take else self.leases.held(client, open_ids))
        if item is None:
            return {**base, **self._no_item(client, open_ids, who, take)}
        return {**base, "mode": "item", "item": self._item(pending, item)}

    def _no_item(self, client: str, open_ids: list[str], annotator: str | None, took: bool) -> dict[str, Any]:
        """Why ``client`` has no item: it has not taken one yet, or every open item is held by others."""
        if not took and any(self.leases.holder(item) is None for item in open_ids):
            return {"mode": "open", "message": f"{_items(len(open_ids))} to label: take one (POST /api/take)"}
        mine = self.leases.reclaimable(client, open_ids, annotator)
        held = (f"the {_items(len(open_ids))} left {'is' if len(open_ids) == 1 else 'are'} with "
                f"{'another annotator' if len(open_ids) == 1 else 'other annotators'}")
        if mine:
            return {"mode": "waiting", "reclaimable": mine,
                    "message": f"{held}; {_items(mine)} under your name {annotator!r} in another tab "
                               "(closed or crashed?): take it back, or wait"}
        return {"mode": "waiting", "reclaimable": 0, "message": f"{held}; wait or come back later"}

    def _item(self, pending: Any, item: str) -> dict[str, Any]:
        row = self._index[item]
        k = pending.pool_indices.index(row)
        suggestion = list(pending.suggestions[k]) if pending.suggestions else []
        confidence = pending.confidence[k] if pending.confidence else float("nan")
        highlight = pending.strategy == KEYWORD_STRATEGY
        known = math.isfinite(confidence)
        return {
            "id": item, "text": self.texts[row], "position": k + 1,
            "suggestion": [name for name in suggestion if name in self.schema.source_names],
            "confidence": round(float(confidence), 4) if known else None,
            "low_confidence": known and is_low_confidence(confidence, len(self.schema.source_names),
                                                          bool(self.schema.multi_label)),
            "highlights": keyword_spans(self.keyword if highlight else None, self.texts[row]),
        }

    def _tick(self, state: LabelState) -> tuple[LabelState, str | None]:
        """The overlapped loop's step (``Background.tick``): the state after it, and why the page waits (None: it does not).

        The batch adopted here is what the answer that completed the batch gets back: no waiting.
        """
        assert self.background is not None
        with self._write:  # one writer of the run in this process (adoption writes the state under the run lock)
            tick = self.background.tick(state)
            if tick.next == "adopted":
                return self.state(), None
            if tick.next == "synchronous":  # the budget's end, or a stop criterion
                self.background.stop(keep_finished=False)
                self.runner.start()
                return state, "the last round trains on every label (the synchronous round)"
        return state, self._waiting(state, tick.status)

    @staticmethod
    def _waiting(state: LabelState, status) -> str | None:
        """Why the page waits for a background training (None: it does not)."""
        if state.pending is not None and not state.open_pending() and status.state == "running":
            return (f"the batch is labeled; the next one is picked by a model training on {status.labeled} labels "
                    "in the background")
        return None

    def round_progress(self) -> RoundProgress:
        """The synchronous round's progress, or, while the page waits for a background training, that training's."""
        progress = self.runner.progress()
        if self.background is None or progress.state == "running":
            return progress
        state = self.state()
        status = self.background.status()
        if status.state == "idle" or state.pending is None or state.open_pending():
            return progress  # the background training while a batch is answered is nothing to wait for
        background = RoundProgress(state=status.state, phase="starting", message=status.message)
        for line in status.log:
            background = read_progress_line(background, line)
        return RoundProgress(background.state, background.phase, background.epoch, background.max_epochs,
                             status.message if status.state == "failed" else background.message, status.log)

    def stop(self) -> None:
        """Stop the synchronous round and the background trainings (the server shuts down)."""
        self.runner.stop()
        if self.background is not None:
            self.background.stop()

    # ------------------------------------------------------------------ writing
    def _refuse_while_training(self) -> None:
        if self.runner.running:
            raise ConfigError("a round is training: answers are refused until the next batch is proposed")

    def answer(self, client: str, example_id: str, labels: Sequence[str] | None, skip: str | None,
               annotator: str | None) -> ImportSummary:
        """Record one answer (labels, or a skip mark) from ``client``; the same answer twice changes nothing."""
        who = annotator or self.annotator
        with self._write:
            self._refuse_while_training()
            if example_id not in self._index:
                raise DataError(f"id: unknown id {example_id!r} (not in the pool)")
            state = self.state()
            self._new_batch(state)
            if state.pending is None and self._index[example_id] not in state.records:  # committed meanwhile
                raise ConfigError("no batch is pending: reload the page, then train and propose the next batch")
            answer = Answer(example_id, None if labels is None else tuple(labels), skip, who, "answer")
            summary = import_answers(self.run_dir, [answer], schema=self.schema, ids=self.ids, annotator=who,
                                     how_to_overwrite=CORRECT_ON_PAGE)
            self.leases.drop(example_id)
            if summary.added or summary.skipped:
                history = self._history.setdefault(client, [])
                if example_id in history:
                    history.remove(example_id)
                history.append(example_id)
            return summary

    def undo(self, client: str, example_id: str | None = None, annotator: str | None = None) -> str | None:
        """Undo ``client``'s last answer (or its answer to ``example_id``); the item comes back to it. None: nothing to undo."""
        with self._write:
            self._refuse_while_training()
            history = self._history.get(client, [])
            target = example_id if example_id is not None else (history[-1] if history else None)
            if target is None:
                return None
            if target not in self._index:
                raise DataError(f"id: unknown id {target!r} (not in the pool)")
            undone = retract_answer(self.run_dir, self.ids, target)
            if target in history:
                history.remove(target)
            if undone:
                self.leases.take(client, target, annotator or self.annotator)
            return target if undone else None

    def release(self, client: str) -> bool:
        """``client`` gives its item back (a closed tab), for another annotator to take."""
        return self.leases.release(client)

    def start_round(self) -> None:
        """Train on every label and propose the next batch, in the background (``lit_al query --resume``)."""
        with self._write:
            self._refuse_while_training()
            state = self.state()
            if state.finished:
                raise ConfigError("the run is finished: its budget is spent")
            progress = self._progress(state)
            if state.pending is not None and progress["batch_answered"] == 0:
                raise ConfigError("answer at least one item of the batch before training the next round")
            if self.background is not None:  # its proposals would be stale once the synchronous round commits
                self.background.stop(keep_finished=False)
            self.runner.start()
