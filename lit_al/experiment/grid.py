"""An experiment grid: one base ``fit`` config expanded over scenarios × strategies × seeds.

Every cell is an ordinary run directory under the experiment directory::

    EXPERIMENT/SCENARIO/round0/seed_S/      the round-0 run of seed S (trains the shared model once)
    EXPERIMENT/SCENARIO/STRATEGY/seed_S/    one strategy, one seed; starts from that model
    EXPERIMENT/SCENARIO/all_data/seed_S/    the "all data" reference: trained on the whole pool

Within a seed every strategy starts from the same initial labeled set (drawn from the run
seed alone) and the same round-0 model (``loop.round0_model_dir``), as in the IBM study
(Ein-Dor et al. 2020); a cold-start scenario (``data.initial.scenario: none``) has no round-0
model. Strategy, model and data-order streams derive from (seed, round, purpose[, strategy]).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import ConfigError

CellKind = Literal["round0", "strategy", "reference"]
ROUND0 = "round0"
REFERENCE = "all_data"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    scenario: str
    strategy: str
    seed: int
    kind: CellKind
    run_dir: Path
    config: dict[str, Any] = field(compare=False, repr=False)
    depends_on: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.scenario}/{self.strategy}/seed_{self.seed}"


@dataclass
class Grid:
    """The parsed grid file (see :func:`load_grid`)."""

    experiment_dir: Path
    base: dict[str, Any]
    strategies: dict[str, Any]
    seeds: list[int]
    scenarios: dict[str, dict[str, Any]]
    reference: bool = True
    reference_seeds: list[int] | None = None
    metric: str | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[Cell]:
        """Every cell, round-0 and reference cells first, then seed-major (all strategies of seed 0 first)."""
        first: list[Cell] = []
        rest: list[Cell] = []
        for scenario, overrides in self.scenarios.items():
            config = deep_merge(self.base, overrides)
            cold = _initial(config).get("scenario") == "none"
            for seed in self.seeds:
                round0_dir = self.experiment_dir / scenario / ROUND0 / f"seed_{seed}"
                depends: tuple[str, ...] = ()
                if not cold:
                    round0 = _cell_config(config, seed, round0_dir, "random", rounds=0, model_dir=round0_dir / "model")
                    first.append(Cell(scenario, ROUND0, seed, "round0", round0_dir, round0))
                    depends = (first[-1].name,)
                for label, spec in self.strategies.items():
                    run_dir = self.experiment_dir / scenario / label / f"seed_{seed}"
                    cell = _cell_config(config, seed, run_dir, spec, model_dir=None if cold else round0_dir / "model")
                    rest.append(Cell(scenario, label, seed, "strategy", run_dir, cell, depends))
            if self.reference:
                for seed in self.reference_seeds or self.seeds[:1]:
                    run_dir = self.experiment_dir / scenario / REFERENCE / f"seed_{seed}"
                    reference = deep_merge(config, {"data": {"initial": {"scenario": "all"}}})
                    cell = _cell_config(reference, seed, run_dir, "random", rounds=0, model_dir=run_dir / "model")
                    first.append(Cell(scenario, REFERENCE, seed, "reference", run_dir, cell))
        rest.sort(key=lambda c: (c.seed, list(self.scenarios).index(c.scenario)))
        return first + rest


def load_grid(path: str | Path, experiment_dir: str | None = None) -> Grid:
    """Read a grid file.

    Keys: ``base`` (a ``lit_al fit`` config file, path relative to the working directory, or
    an inline mapping), ``experiment_dir``, ``seeds`` (list), ``strategies`` (list of names /
    ``{name: ..., options}`` specs, or a mapping label → spec), optional ``scenarios`` (mapping
    name → overrides deep-merged into the base, e.g. another dataset or initial set),
    ``reference`` (run the all-data cell; default true), ``reference_seeds`` (default: the first
    seed) and ``metric`` (the report's headline test metric; default chosen from the task).
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such grid file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a grid file is a mapping of options")
    known = {"base", "experiment_dir", "seeds", "strategies", "scenarios", "reference", "reference_seeds", "metric"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown grid option(s) {unknown}; known: {sorted(known)}")
    base = raw.get("base")
    if isinstance(base, str):
        base_path = Path(base)
        if not base_path.exists():
            raise ConfigError(f"{path}: base config {base} not found (paths are relative to the working directory)")
        base = yaml.safe_load(base_path.read_text(encoding="utf-8"))
    if not isinstance(base, dict):
        raise ConfigError(f"{path}: 'base' must be a fit config file or a mapping")
    directory = experiment_dir or raw.get("experiment_dir")
    if not directory:
        raise ConfigError(f"{path}: set experiment_dir (or pass --experiment_dir)")
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{path}: seeds must be a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: seeds has duplicates: {seeds}")
    strategies = _strategies(raw.get("strategies"), path)
    scenarios = raw.get("scenarios") or {"default": {}}
    if not isinstance(scenarios, dict) or not all(isinstance(v or {}, dict) for v in scenarios.values()):
        raise ConfigError(f"{path}: scenarios must map a name to a mapping of overrides")
    for name in scenarios:
        _check_name(str(name), "scenario", path)
    reference_seeds = raw.get("reference_seeds")
    if reference_seeds is not None and (not isinstance(reference_seeds, list) or not all(isinstance(s, int) for s in reference_seeds)):
        raise ConfigError(f"{path}: reference_seeds must be a list of integers")
    return Grid(
        experiment_dir=Path(directory),
        base=base,
        strategies=strategies,
        seeds=list(seeds),
        scenarios={str(k): dict(v or {}) for k, v in scenarios.items()},
        reference=bool(raw.get("reference", True)),
        reference_seeds=reference_seeds,
        metric=raw.get("metric"),
        source=raw,
    )


def _strategies(spec: Any, path: Path) -> dict[str, Any]:
    if isinstance(spec, dict):
        items = list(spec.items())
    elif isinstance(spec, list) and spec:
        items = []
        for entry in spec:
            if isinstance(entry, str):
                items.append((entry, entry))
            elif isinstance(entry, dict) and "name" in entry:
                entry = dict(entry)
                label = entry.pop("label", entry["name"])
                items.append((label, entry))
            else:
                raise ConfigError(f"{path}: a strategy is a name or a mapping with 'name', got {entry!r}")
    else:
        raise ConfigError(f"{path}: strategies must be a non-empty list or a mapping label -> strategy")
    out: dict[str, Any] = {}
    for label, value in items:
        label = str(label)
        _check_name(label, "strategy label", path)
        if label in (ROUND0, REFERENCE):
            raise ConfigError(f"{path}: {label!r} is reserved; give the strategy another label")
        if label in out:
            raise ConfigError(f"{path}: strategy label {label!r} appears twice; give one a 'label'")
        out[label] = value
    return out


def _check_name(name: str, what: str, path: Path) -> None:
    if not _NAME.match(name):
        raise ConfigError(f"{path}: {what} {name!r} must be letters, digits, '_', '-' or '.' (it names a directory)")


def _initial(config: dict[str, Any]) -> dict[str, Any]:
    return dict((config.get("data") or {}).get("initial") or {})


def _cell_config(
    config: dict[str, Any], seed: int, run_dir: Path, strategy: Any, *, rounds: int | None = None, model_dir: Path | None
) -> dict[str, Any]:
    cell = copy.deepcopy(config)
    cell["seed"] = seed
    cell["run_dir"] = str(run_dir)
    cell["strategy"] = copy.deepcopy(strategy)
    loop = dict(cell.get("loop") or {})
    if rounds is not None:
        loop["rounds"] = rounds
    loop["round0_model_dir"] = str(model_dir) if model_dir is not None else None
    cell["loop"] = loop
    return cell


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in: mappings recursively, anything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
