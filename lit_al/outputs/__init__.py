"""What ``predict_step`` can produce, per example, stored by pool index.

- ``catalog``: the torch-free catalogue (names, row shapes, flags, typed options) that
  strategies name their ``needs`` from;
- ``registry``: one computer per catalogued output, and ``compute_outputs``;
- ``forward``: the shared eval-mode forward pass and helpers (dropout, seeding, caches), and
  ``Classifier``, what the computers use of the classifier (this package never imports ``lit_al.model``);
- ``store``: disk-backed arrays indexed by pool index;
- ``predictor``: ``OutputPredictor``, the LightningModule ``trainer.predict`` runs around the
  classifier: it computes one request's outputs per batch and fills a store;
- one module per family of computers: ``basic``, ``mc``, ``attention``, ``gradients``, ``mlm``.

Importing this package imports only the catalogue (no torch, no Lightning).
"""

from .catalog import CATALOG, OutputSpec, PredictionOptions, PredictionRequest, flagged, output_names

__all__ = ["CATALOG", "OutputSpec", "PredictionOptions", "PredictionRequest", "flagged", "output_names"]
