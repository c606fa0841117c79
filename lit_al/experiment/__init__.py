"""Experiments: a grid of ``fit`` runs (scenarios × strategies × seeds) and its report."""

from .grid import Cell, Grid, deep_merge, load_grid
from .runner import CellResult, run_cells, run_finished, write_manifest

__all__ = ["Cell", "CellResult", "Grid", "deep_merge", "load_grid", "run_cells", "run_finished", "write_manifest"]
