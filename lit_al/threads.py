"""How many CPU threads torch (and the OpenMP libraries loaded after it) may use.

torch starts with one intra-op thread per physical core of the host. Inside a container
limited by a CPU quota, or on a machine shared by several runs, that is more threads than
the cores this process gets; OpenMP threads then spin-wait on each other and a training
step runs up to 10× slower (measured on this project's shared 2-core machine). lit_al
therefore chooses the count deliberately: the cores this process may actually use,
divided among the processes started together (``lit_al experiment --jobs``), unless
``OMP_NUM_THREADS`` says otherwise.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import ConfigError

#: Environment variables read by OpenMP / BLAS runtimes when they load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota (``cpu.max``)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def default_threads(jobs: int = 1) -> int:
    """``OMP_NUM_THREADS`` when set to a positive integer, else ``available_cpus() // jobs`` (at least 1)."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, available_cpus() // max(1, int(jobs)))


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to ``threads`` (``None``: :func:`default_threads`); return the count.

    Also exports ``OMP_NUM_THREADS`` and the BLAS variables, so runtimes loaded later and
    child processes use the same count (FAISS imported after torch shares torch's OpenMP
    runtime and follows it directly).
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be a positive integer or null (automatic), got {threads!r}")
    count = default_threads() if threads is None else threads
    import torch

    torch.set_num_threads(count)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(count)
    return count
