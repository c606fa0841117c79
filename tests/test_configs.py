"""Every shipped config parses (no unknown keys) and its data loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from lit_al.config import build_data, fit_parser

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_parses_and_data_loads(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = fit_parser().parse_args(["--config", str(path)])
    data_cfg = cfg.data.init_args.as_dict()
    if any(str(data_cfg.get(k) or "").startswith("../shared") for k in ("train", "dev", "test")) and not (ROOT.parent / "shared").exists():
        pytest.skip("../shared is not beside the checkout")
    data = build_data(cfg)
    data.load()
    assert len(data.pool) > 0 and data.test is not None


GRIDS = sorted((ROOT / "configs" / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("path", GRIDS, ids=[p.stem for p in GRIDS])
def test_experiment_grid_expands_into_valid_runs(path, monkeypatch, capsys):
    """Every cell of a shipped grid parses as a fit config and its strategy options are valid."""
    from lit_al.cli import main
    from lit_al.experiment import load_grid

    monkeypatch.chdir(ROOT)
    assert main(["experiment", "--config", str(path), "--dry_run", "true"]) == 0
    grid = load_grid(path)
    out = capsys.readouterr().out
    assert out.count("\n") == len(grid.cells()) == len(grid.seeds) * (len(grid.strategies) + 1) + 1 - (
        len(grid.seeds) if grid.base["data"]["initial"]["scenario"] == "none" else 0)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_says_which_head_it_uses(path):
    """The paper configs and the examples name their head (native, or lit_al's own for a paper that needs it)."""
    import yaml

    model = yaml.safe_load(path.read_text(encoding="utf-8"))["model"]
    assert model.get("head") in ("native", "lit_al"), f"{path.name}: model.head is not set"
