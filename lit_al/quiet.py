"""Silence library chatter that says nothing to a lit_al user (the loop reports its own progress).

Lightning's banners ("GPU available", the litlogger tip, "`Trainer.fit` stopped"), its
warnings about lit_al's own length-sorted batch sampler and about empty dev shards, and
transformers' weight-loading bars. The command line silences them for its whole process
(``quiet_libraries``); a notebook's ``Session`` only while one of its calls runs
(``quieted_libraries``), leaving the user's own settings as they were afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from typing import Iterator

#: Warnings about choices lit_al made on purpose (its batch sampler, few workers, eval-mode modules).
WARNING_PATTERNS = (".*does not have many workers.*", ".*custom batch sampler.*", ".*LeafSpec.*",
                    ".*module\\(s\\) in eval mode.*", ".*Total length of .* across ranks is zero.*")
#: Loggers whose INFO lines are banners; faiss.loader reports which CPU build it loads (and a
#: ModuleNotFoundError for the AVX-512 one) at INFO.
QUIET_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "transformers.modeling_utils", "faiss", "faiss.loader")


def _filter_warnings() -> None:
    for pattern in WARNING_PATTERNS:
        warnings.filterwarnings("ignore", message=pattern)


def quiet_libraries() -> None:
    """Silence the chatter for the rest of the process (the command line)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _filter_warnings()
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def quieted_libraries() -> Iterator[None]:
    """Silence the chatter while the block runs, then restore the warning filters, logger levels and
    transformers' verbosity and progress bars as they were (a notebook keeps its own settings)."""
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        hf_logging = None
    hf_state = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()) if hf_logging else None
    with warnings.catch_warnings():
        quiet_libraries()
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            if hf_logging is not None and hf_state is not None:
                hf_logging.set_verbosity(hf_state[0])
                (hf_logging.enable_progress_bar if hf_state[1] else hf_logging.disable_progress_bar)()
