"""Experiments: a grid of ``fit`` runs (scenarios × strategies × seeds) and its report."""

from .grid import Cell, Grid, deep_merge, load_grid
from .runner import CellResult, cell_finished, run_cells, write_manifest

__all__ = ["Cell", "CellResult", "Grid", "cell_finished", "deep_merge", "load_grid", "run_cells", "write_manifest"]
