"""One background training of the overlapped loop: ``python -m lit_al.overlap.worker JOB_DIR``.

Reads the job's state snapshot and the run's saved config, trains round r + 1's model while
batch r is answered, on every label of the snapshot (``ActiveLoop.propose_ahead``), scores the
pool without the pending batch, picks batch r + 1 and writes ``proposal.json`` last. Its own process: training
on the server's cores inside the server would stall the page. It writes only inside ``JOB_DIR``
(the run's token cache is read, and filled atomically if missing).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from ..atomic import atomic_write_json
from ..errors import LitAlError
from ..rundir import CONFIG_FILE
from .jobs import JOB_FILE, PROPOSAL_FILE, SNAPSHOT_FILE

log = logging.getLogger("lit_al.overlap")


def _json_safe(value: Any) -> Any:
    """Plain JSON values (NaN and infinities become null; numpy scalars become Python numbers)."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def warm_started(model_class: type, weights_dir: Path):
    """``model_class`` whose instances start from the run's last model (``loop.overlap.warm_start``), when it has one."""
    from ..model import load_run_model

    def make(**kwargs: Any):
        model = model_class(**kwargs)
        try:
            last, meta = load_run_model(weights_dir)
        except LitAlError as exc:  # no model yet (round 0), or one being replaced: start from the pretrained weights
            log.info("warm start: %s; starting from the pretrained weights", exc)
            return model
        model.load_state_dict(last.state_dict())
        log.info("warm start: from the run's round-%s model", meta.get("round"))
        return model

    return make


def build_job_loop(run_dir: Path, job_dir: Path, info: dict[str, Any]):
    """The ``ActiveLoop`` of the run's saved config, writing into ``job_dir``, with a person as the oracle."""
    from ..config import as_dict, build_data, build_strategy, fit_parser, model_spec, round0_fingerprint, trainer_factory
    from ..loop import ActiveLoop, LoopConfig
    from ..oracle import PersonOracle
    from ..threads import set_threads

    parser = fit_parser()
    cfg = parser.parse_path(str(run_dir / CONFIG_FILE))
    set_threads(cfg.threads)
    loop_config = LoopConfig(**as_dict(cfg.loop))
    options = loop_config.overlap
    if info.get("intermediate") and options.max_epochs is not None:
        cfg.trainer.max_epochs = options.max_epochs
    cfg.trainer.logger = False  # the run's logger belongs to the synchronous rounds
    data = build_data(cfg)
    strategy = build_strategy(cfg.strategy, data.multi_label)
    model_class, model_kwargs = model_spec(cfg)
    if options.warm_start:
        from ..model import RUN_MODEL_DIR

        model_class = warm_started(model_class, run_dir / RUN_MODEL_DIR)
    return ActiveLoop(model_kwargs=model_kwargs, model_class=model_class, data=data, strategy=strategy,
                      trainer_factory=trainer_factory(parser, cfg.trainer, None), run_dir=job_dir, seed=cfg.seed,
                      loop=loop_config, oracle=PersonOracle(), round0_key=round0_fingerprint(cfg))


def run_job(job_dir: Path) -> dict[str, Any]:
    """Train, score and pick for the job in ``job_dir``; write and return its ``proposal.json``."""
    from ..data.state import LabelState, PendingQuery
    from ..labeling import now_utc
    from ..model import load_tokenizer
    from ..stopping import STOPPING_DIR

    job_dir = Path(job_dir).resolve()
    run_dir = job_dir.parents[1]
    info = json.loads((job_dir / JOB_FILE).read_text(encoding="utf-8"))
    loop = build_job_loop(run_dir, job_dir, info)
    data = loop.data
    data.load()
    data.tokenize(load_tokenizer(loop.model_kwargs), cache_dir=run_dir / "cache")
    state = LabelState.load(job_dir / SNAPSHOT_FILE, data.pool.ids)
    state.path = None  # a snapshot: never written back
    data.state = state
    if (run_dir / STOPPING_DIR).is_dir():  # the stop-set predictions of earlier rounds: the stopping signals' history
        shutil.copytree(run_dir / STOPPING_DIR, job_dir / STOPPING_DIR, dirs_exist_ok=True)
    round_index = int(info["round"])
    log.info("background job %s: round %d model on %d labels (%d answers of the round-%d batch)",
             job_dir.name, round_index + 1, len(state.records), int(info["answers"]), round_index)
    row, picks = loop.propose_ahead(state, round_index)
    pending = None
    if picks is not None and picks.selection is not None:
        pending = PendingQuery(round_index + 1, tuple(int(i) for i in picks.selection.indices),
                               tuple(float(s) for s in picks.selection.scores), picks.strategy,
                               picks.suggestions, picks.confidence).to_json()
    proposal = {
        "job": int(info["job"]), "round": round_index, "for_round": round_index + 1,
        "labeled": len(state.records), "answers": int(info["answers"]), "intermediate": bool(info.get("intermediate")),
        "created": info["created"], "trained_at": now_utc(),
        "row": {k: _json_safe(v) for k, v in row.items()}, "pending": pending,
    }
    atomic_write_json(job_dir / PROPOSAL_FILE, proposal)  # last: the job is done
    log.info("background job %s: proposed %d items for round %d", job_dir.name,
             len(pending["pool_indices"]) if pending else 0, round_index + 1)
    return proposal


def _quiet() -> None:
    for pattern in (".*does not have many workers.*", ".*LeafSpec.*", ".*module\\(s\\) in eval mode.*"):
        warnings.filterwarnings("ignore", message=pattern)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m lit_al.overlap.worker JOB_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout, force=True)
    _quiet()
    try:
        run_job(Path(args[0]))
    except LitAlError as exc:
        print(f"lit_al: error: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
