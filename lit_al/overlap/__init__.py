"""The overlapped loop: a person labels while lit_al trains on every label so far and has the next batch ready.

``jobs`` lays the background trainings out on disk, ``worker`` is one of them (its own
process: ``python -m lit_al.overlap.worker JOB_DIR``), ``adoption`` makes a finished job's batch the
pending one in one atomic write of the state, and ``background`` is the schedule the labeling page,
``Session`` and ``lit_al labelstudio watch`` follow. Simulations (``lit_al fit``, ``lit_al experiment``) never use it.
"""

from .adoption import Adoption, Pool, adopt
from .background import Background, BackgroundStatus, Tick

__all__ = ["Adoption", "Background", "BackgroundStatus", "Pool", "Tick", "adopt"]
