"""Active learning with a person in the loop, from Python: the same run directory as ``lit_al query`` / ``label``.

::

    from lit_al import Session

    session = Session("configs/practitioner.yaml", run_dir="runs/mine")
    batch = session.query()                      # trains on what is labeled, proposes a batch
    session.teach(batch.ids[:2], ["LOC", "HUM"])  # a person's answers (validated, saved atomically)
    batch = session.query()                      # retrains from the pretrained weights, proposes again
    session.predict(["Where is Lyon ?"])         # the last model's labels (a table)
    print(session.status())                      # where the run stands, as lit_al status prints it
    session.model                                # the last model (a TextClassifier)

Every step writes the run directory exactly as the command line does, so a notebook and
``lit_al label`` / ``lit_al status`` / the labeling page can share one run.

With ``loop.overlap.enabled`` (the default) a session overlaps labeling with training
(``lit_al.overlap``): after ``query`` and every ``teach``, a background process trains on
every label so far and picks the next batch, and the next ``query`` adopts, at once, the batch
of a background training that saw every label given so far (waiting for one that runs);
otherwise it trains now, as the synchronous ``query`` does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .builtin import config_path
from .config import build_data, build_run, fit_parser, saved_config, saved_data_files
from .data.schema import LabelSchema
from .errors import ConfigError
from .labeling import Answer, ImportSummary, apply_answers
from .quiet import quieted_libraries
from .run_lock import run_lock
from .rundir import STATE_FILE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """The pending batch of a run: what a person is asked to label, best first."""

    round: int
    ids: list[str]
    texts: list[str]
    suggestions: list[tuple[str, ...]]
    confidence: list[float]
    scores: list[float]

    def __len__(self) -> int:
        return len(self.ids)


def load_run_data(run_dir: Path):
    """The loaded data module of a run (no tokenization): its pool ids and texts, its label schema."""
    if not (run_dir / STATE_FILE).is_file():
        raise ConfigError(f"{run_dir}: not a lit_al run (no state.json); start one with lit_al query")
    data = build_data(saved_config(run_dir))
    data.load()
    return data


def load_run_files(run_dir: Path):
    """The run's pool ids and texts and its label schema (``DataFiles``, loaded): what importing answers needs.

    Unlike ``load_run_data`` it starts neither torch nor Lightning for lit_al's own data module.
    """
    if not (run_dir / STATE_FILE).is_file():
        raise ConfigError(f"{run_dir}: not a lit_al run (no state.json); start one with lit_al query")
    data = saved_data_files(run_dir)
    data.load()
    return data


def load_run_state(run_dir: Path):
    """The loaded data module of a run (no tokenization) and its label state."""
    from .data.state import LabelState

    data = load_run_data(run_dir)
    return data, LabelState.load(run_dir / STATE_FILE, data.pool.ids)


def import_answers(run_dir: Path, answers: Sequence[Answer], *, schema: LabelSchema, ids: Sequence[str],
                   overwrite: bool = False, annotator: str | None = None,
                   how_to_overwrite: str = "use --overwrite") -> ImportSummary:
    """Validate ``answers`` against the run's pending batch and label schema, then save them in one atomic write.

    ``schema`` and ``ids`` are the run's (``load_run_data``): a caller that answers many times loads them
    once. Refused at once (one line) while another lit_al process works on the run. ``how_to_overwrite``
    is what a refused correction tells the caller to do (``apply_answers``).
    """
    from .data.state import LabelState

    with run_lock(run_dir, writes=True, wait=False):
        state = LabelState.load(run_dir / STATE_FILE, ids)  # read under the lock: nothing imported meanwhile is lost
        summary = apply_answers(state, schema, answers, overwrite=overwrite, annotator=annotator,
                                how_to_overwrite=how_to_overwrite)
        state.save()
    return summary


def pending_batch(run_dir: Path) -> Batch | None:
    """The run's pending batch, or None when nothing waits for a person."""
    data, state = load_run_state(run_dir)
    pending = state.pending
    if pending is None:
        return None
    rows = list(pending.pool_indices)
    return Batch(
        pending.round, [data.pool.ids[i] for i in rows], [data.pool.texts[i] for i in rows],
        list(pending.suggestions) or [()] * len(rows),
        list(pending.confidence) or [float("nan")] * len(rows), list(pending.scores),
    )


class Session:
    """One run with a person in the loop (see the module docstring).

    Args:
        config: a config file (``builtin:NAME`` for a shipped one) or a mapping with the keys of
            ``lit_al fit``'s config.
        **overrides: top-level keys replacing the config's (``run_dir``, ``seed``, ...).
    """

    def __init__(self, config: str | Path | Mapping[str, Any], **overrides: Any) -> None:
        parser = fit_parser()
        if isinstance(config, Mapping):
            cfg = parser.parse_object(dict(config))
        else:
            cfg = parser.parse_path(str(config_path(config)))
        for key, value in overrides.items():
            cfg[key] = value
        cfg.loop.oracle = "person"
        self._parser = parser
        self._cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self._background_trainings = None

    @quieted_libraries()  # a notebook sees what concerns it, not Lightning's banners and warnings
    def query(self) -> Batch:
        """Commit the answers given so far, train on every label, score the pool and propose a batch.

        Overlapped (``loop.overlap.enabled``): the batch a background training picked while the
        person answered, when one is ready or training (see the module docstring).
        """
        if self._no_answers_yet():  # nothing to commit or train on: the same batch, at once
            self._tick("never")  # (overlapped: the next batch's training starts meanwhile)
            return pending_batch(self.run_dir)
        background = self._background()
        if background is not None:
            batch = self._adopt_ahead(background)
            if batch is not None:
                return batch
        plan = build_run(self._parser, self._cfg.clone())
        plan.execute()
        batch = pending_batch(self.run_dir)
        if batch is None:
            raise ConfigError(f"{self.run_dir}: the run is finished (its budget is spent); nothing to propose")
        self._tick("never")  # the next batch's training starts now
        return batch

    def _background(self):
        """The run's background trainings (``lit_al.overlap.Background``), or None (synchronous, or no run yet)."""
        if not self._cfg.loop.overlap.enabled or not (self.run_dir / STATE_FILE).is_file():
            return None
        if self._background_trainings is None:
            from .loop import LoopConfig
            from .overlap import Background, Pool

            data = load_run_data(self.run_dir)
            config = LoopConfig(**saved_config(self.run_dir).loop.as_dict())
            self._background_trainings = Background(
                self.run_dir, Pool(data.pool.ids, data.pool.texts, data.schema, data.label_separator), config)
        return self._background_trainings

    def _tick(self, adopt_when: str, min_labeled: int = 0):
        from .data.state import LabelState

        background = self._background()
        if background is None:
            return None
        state = LabelState.load(self.run_dir / STATE_FILE, background.pool.ids)
        return background.tick(state, adopt_when=adopt_when, min_labeled=min_labeled)

    def _adopt_ahead(self, background) -> Batch | None:
        """The batch of a background training that saw every label given so far (waiting for one that runs);
        None: none did, and the synchronous round trains on them now (``query`` means "train on every label")."""
        from .data.state import LabelState

        state = LabelState.load(self.run_dir / STATE_FILE, background.pool.ids)
        if state.pending is None or len(state.open_pending()) == len(state.pending.pool_indices):
            return None  # nothing answered: nothing to commit (the synchronous round says so too)
        labeled = len(state.records)
        tick = self._tick("answered", labeled)
        if tick.adoption is None and tick.status.state == "running" and (tick.status.labeled or 0) >= labeled:
            background.wait()  # a training on every label runs: its batch is the one to give
            tick = self._tick("answered", labeled)
        if tick.adoption is not None and tick.adoption.status == "adopted":
            return pending_batch(self.run_dir)
        background.stop(keep_finished=False)  # the synchronous round commits and trains: what the jobs made is stale
        return None

    def close(self) -> None:
        """Stop the background trainings of this session (they would otherwise finish on their own)."""
        if self._background_trainings is not None:
            self._background_trainings.stop()

    def _no_answers_yet(self) -> bool:
        """Whether the pending batch has no answer yet (then say so: ``query`` returns it as it is)."""
        from .product.run_files import read_batch_progress

        progress = None if self._cfg.overwrite else read_batch_progress(self.run_dir)
        if progress is None or progress.answered:
            return False
        log.warning("no labels arrived for the round-%d batch yet: the same batch (teach() answers it)", progress.round)
        return True

    def teach(self, ids: Sequence[str], labels: Sequence[str | Sequence[str] | None], *,
              annotator: str | None = None, overwrite: bool = False) -> ImportSummary:
        """A person's answers: one label (or a list, multi-label) per id; ``None`` marks an item skipped."""
        if len(ids) != len(labels):
            raise ConfigError(f"teach: {len(ids)} ids but {len(labels)} labels")
        answers = [
            Answer(str(i), None if label is None else (label,) if isinstance(label, str) else tuple(label),
                   "skip" if label is None else None, annotator, f"teach(): item {k}")
            for k, (i, label) in enumerate(zip(ids, labels))
        ]
        data = load_run_data(self.run_dir)
        summary = import_answers(self.run_dir, answers, schema=data.schema, ids=data.pool.ids, overwrite=overwrite,
                                 annotator=annotator, how_to_overwrite="pass teach(..., overwrite=True)")
        self._tick("never")  # loop.overlap.retrain_every answers since the last training: the next one starts
        return summary

    def predict(self, texts: Sequence[str], *, batch_size: int = 64):
        """The last model's labels of ``texts``: a table (``pandas.DataFrame``) with ``text``, ``predicted``,
        ``confidence`` and ``prob_<class>`` per text, in order (``lit_al predict``'s columns, ``id`` 1..n)."""
        import torch

        from .model import RUN_MODEL_DIR, load_run_model, load_tokenizer
        from .product.predict import Texts, predict_probs, prediction_table
        from .product.run_files import run_max_length

        texts = [str(t) for t in texts]
        blank = [k for k, text in enumerate(texts) if not text.strip()]
        if blank:
            raise ConfigError(f"predict: {len(blank)} empty text(s), the first at position {blank[0]}")
        with quieted_libraries():
            model, meta = load_run_model(self.run_dir / RUN_MODEL_DIR)
            if torch.cuda.is_available():
                model.to("cuda")
            probs = predict_probs(model, load_tokenizer(meta["model"]), texts, max_length=run_max_length(self.run_dir),
                                  batch_size=batch_size, progress=False)
        rows = Texts([str(k) for k in range(1, len(texts) + 1)], texts)
        return prediction_table(rows, probs, list(model.label_names), model.multi_label, model.threshold)

    def status(self):
        """Where the run stands (``lit_al status``): a ``RunStatus``; ``print()`` it for the same lines."""
        from .product.status import run_status

        return run_status(self.run_dir)

    @property
    def model(self):
        """The run's last model (``TextClassifier``, eval mode)."""
        from .model import RUN_MODEL_DIR, load_run_model

        return load_run_model(self.run_dir / RUN_MODEL_DIR)[0]
