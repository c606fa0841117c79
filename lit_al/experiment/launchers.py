"""Where the cells of a grid run: local processes, or jobs on a cluster scheduler through submitit.

A launcher starts one cell's command (the same ``lit_al fit --config CELL.yaml`` whatever
the launcher) and later says whether it has finished and how. ``runner.run_cells`` keeps
the order (a seed's round-0 cell before its strategies), the skip/resume logic and the
number of cells in flight; the launcher only places them.

- :class:`ProcessLauncher` (``--launcher local``): subprocesses on this machine, each
  with ``cpu_count // jobs`` intra-op threads; with ``devices``, one cell per GPU, placed
  by ``CUDA_VISIBLE_DEVICES``.
- :class:`SubmititLauncher` (``--launcher slurm``): each cell is a SLURM job submitted
  through submitit (``pip install lit_al[slurm]``); ``--slurm.cluster local`` runs the
  same path through submitit's local executor (tests, machines without SLURM).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from ..threads import default_threads


class Launcher(Protocol):
    """What ``run_cells`` needs from a launcher."""

    #: How many cells may be in flight at once.
    slots: int

    def start(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> Any:
        """Start ``command`` for cell ``name``; returns a handle for :meth:`poll`."""

    def poll(self, handle: Any) -> int | None:
        """``None`` while the cell runs, then its exit status (0: success)."""

    def log(self, handle: Any) -> Path:
        """Where the cell's output goes."""

    def stop(self, handle: Any) -> None:
        """Stop a cell still in flight (the experiment itself was interrupted); it resumes with the next run."""


class ProcessLauncher:
    """Cells as local subprocesses, ``jobs`` at a time (one per device when ``devices`` are given).

    Each process gets ``threads.default_threads(slots)`` intra-op threads (the CPUs this
    process may use divided by the slots, unless ``OMP_NUM_THREADS`` is set), because oversubscribed torch threads slow every step down many times over on a
    small machine. With ``devices`` (e.g. ``["0", "1"]``) a cell is started only on a free
    device, which it sees alone as ``CUDA_VISIBLE_DEVICES``.
    """

    def __init__(self, jobs: int = 1, devices: list[str] | None = None) -> None:
        self.devices = [str(d) for d in devices] if devices else None
        self.slots = len(self.devices) if self.devices else max(1, int(jobs))
        self.free = list(self.devices or [])
        self.threads = str(default_threads(self.slots))

    def start(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> _Process:
        env = dict(env, OMP_NUM_THREADS=self.threads, MKL_NUM_THREADS=self.threads)
        device = self.free.pop(0) if self.devices else None
        if device is not None:
            env["CUDA_VISIBLE_DEVICES"] = device
        with open(log_path, "ab") as handle:
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        return _Process(process, device, log_path)

    def poll(self, handle: _Process) -> int | None:
        code = handle.process.poll()
        if code is not None and handle.device is not None:
            self.free.append(handle.device)  # the device is free again, once
            handle.device = None
        return code

    def log(self, handle: _Process) -> Path:
        return handle.log_path

    def stop(self, handle: _Process) -> None:
        handle.process.terminate()
        handle.process.wait()


@dataclass
class _Process:
    """A local cell: its process, the device it holds (None once released) and its log."""

    process: subprocess.Popen
    device: str | None
    log_path: Path


@dataclass
class SlurmOptions:
    """Resources of every cell's SLURM job (submitit ``AutoExecutor`` parameters).

    ``partition``, ``account``, ``qos``, ``constraint``: as ``sbatch`` takes them;
    ``timeout_min``: the job's time limit in minutes; ``gpus_per_cell``: GPUs per job
    (one node, one task); ``cpus_per_cell``: CPUs per job (also the cell's intra-op
    threads); ``mem_gb``: memory per job; ``max_running``: cells submitted at once (queued
    or running); ``folder``: submitit's job files and logs (default ``EXPERIMENT/slurm``);
    ``additional``: any other ``#SBATCH`` option, e.g. ``{"exclude": "node7"}``;
    ``setup``: shell lines run before the cell (``module load ...``, ``source venv/bin/activate``);
    ``cluster``: ``"slurm"``, or ``"local"`` for submitit's local executor (the same path
    without SLURM: tests, a single machine).
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    timeout_min: int = 240
    gpus_per_cell: int = 1
    cpus_per_cell: int = 8
    mem_gb: int | None = None
    max_running: int = 64
    folder: str | None = None
    additional: dict[str, Any] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)
    cluster: str = "slurm"

    def executor_parameters(self) -> dict[str, Any]:
        """The ``AutoExecutor.update_parameters`` arguments (SLURM-only ones prefixed ``slurm_``)."""
        params: dict[str, Any] = {"timeout_min": int(self.timeout_min), "gpus_per_node": int(self.gpus_per_cell),
                                  "cpus_per_task": int(self.cpus_per_cell), "tasks_per_node": 1, "nodes": 1}
        if self.mem_gb is not None:
            params["mem_gb"] = int(self.mem_gb)
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(self, key) is not None:
                params[f"slurm_{key}"] = getattr(self, key)
        if self.additional:
            params["slurm_additional_parameters"] = dict(self.additional)
        if self.setup:
            params["slurm_setup"] = list(self.setup)
        return params


class SubmititLauncher:
    """Cells as submitit jobs: SLURM (``cluster="slurm"``) or submitit's local executor (``cluster="local"``).

    Each job runs the cell's command through ``submitit.helpers.CommandFunction`` in the
    current working directory (cell configs name data files relative to it) and with this
    process's environment; its output is the job's submitit log. The process that runs
    ``lit_al experiment`` stays alive while the grid runs, submitting each cell once its
    round-0 cell has succeeded; if it is stopped, running the same command again skips the
    finished cells and resumes the others.
    """

    def __init__(self, folder: Path, options: SlurmOptions) -> None:
        try:
            import submitit
        except ImportError:
            raise ConfigError("--launcher slurm needs submitit: pip install 'lit_al[slurm]'") from None
        self._command_function = submitit.helpers.CommandFunction
        if options.cluster not in ("slurm", "local"):
            raise ConfigError(f"--slurm.cluster must be slurm or local, got {options.cluster!r}")
        try:
            self.executor = submitit.AutoExecutor(folder=str(folder), cluster=options.cluster)
        except RuntimeError as exc:  # submitit's SLURM executor refuses a machine without srun
            raise ConfigError(f"--launcher slurm: {exc} (on a machine without SLURM use --slurm.cluster local)") from None
        # AutoExecutor passes each executor its own parameters: slurm_* are ignored by the local one
        self.executor.update_parameters(**options.executor_parameters())
        self.slots = max(1, int(options.max_running))
        self.threads = str(max(1, int(options.cpus_per_cell)))

    def start(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> Any:
        self.executor.update_parameters(name=name.replace("/", "__"))
        env = dict(env, OMP_NUM_THREADS=self.threads, MKL_NUM_THREADS=self.threads)
        return self.executor.submit(self._command_function(command, cwd=os.getcwd(), env=env))

    def poll(self, handle: Any) -> int | None:
        if not handle.done():
            return None
        return 0 if handle.exception() is None else 1

    def log(self, handle: Any) -> Path:
        return Path(handle.paths.stdout)

    def stop(self, handle: Any) -> None:
        handle.cancel(check=False)


def make_launcher(
    name: str, experiment_dir: Path, *, jobs: int = 1, devices: list[str] | None = None,
    slurm: SlurmOptions | None = None,
) -> Launcher:
    """The launcher ``lit_al experiment --launcher NAME`` asks for."""
    if name == "local":
        return ProcessLauncher(jobs, devices)
    if name == "slurm":
        if devices:
            raise ConfigError("--devices places local processes; with --launcher slurm give --slurm.gpus_per_cell")
        options = slurm or SlurmOptions()
        folder = Path(options.folder) if options.folder else experiment_dir / "slurm"
        return SubmititLauncher(folder, options)
    raise ConfigError(f"--launcher must be local or slurm, got {name!r}")
