"""The few process-group facts the loop needs under DDP (the group itself is Lightning's).

Lightning's DDP launcher re-runs the ``lit_al`` command once per extra process
(or ``torchrun`` starts them all), so every rank runs the whole loop: every rank
trains and scores its shard, rank 0 alone selects and writes files, and the
picks are broadcast. ``is_writer`` answers before any process group exists, from
the environment the launchers set.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TypeVar

T = TypeVar("T")


def is_writer() -> bool:
    """Whether this process is global rank 0 (the only one that writes run files)."""
    env = os.environ
    for key in ("RANK", "SLURM_PROCID"):
        if key in env:
            return int(env[key]) == 0
    return int(env.get("NODE_RANK", env.get("GROUP_RANK", 0))) == 0 and int(env.get("LOCAL_RANK", 0)) == 0


def end_group() -> None:
    """Destroy the default process group, once this rank's command has ended well (a no-op without one).

    Lightning leaves the group alive at the end of a run. A gloo group still alive when the
    interpreter shuts down can abort a rank that has done all its work ("terminate called
    without an active exception", exit status -6: pytorch/pytorch#190489), which torchrun and
    SLURM report as a failed job. Not after an error: another rank may still be inside a
    collective, and destroying the group could hang.
    """
    if "torch" not in sys.modules:  # a light verb imported no torch: there is no group
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _group_active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> tuple[int, int]:
    """(rank, world size) of the active process group, (0, 1) without one."""
    if not _group_active():
        return 0, 1
    import torch.distributed as dist

    return dist.get_rank(), dist.get_world_size()


def barrier() -> None:
    if _group_active():
        import torch.distributed as dist

        dist.barrier()


def broadcast(value: T) -> T:
    """Rank 0's ``value`` on every rank (picklable objects; a no-op without a process group)."""
    if not _group_active():
        return value
    import torch.distributed as dist

    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
