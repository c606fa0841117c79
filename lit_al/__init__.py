"""lit_al: active learning for transformer text classifiers on PyTorch Lightning."""

__version__ = "0.1.0"
