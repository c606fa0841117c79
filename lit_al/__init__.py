"""lit_al: active learning for transformer text classifiers on PyTorch Lightning.

The main classes are exported here and imported on first use (PEP 562), so that
``import lit_al`` (and ``lit_al --help``, ``lit_al status``) loads neither torch
nor Lightning::

    from lit_al import ActiveDataModule, ActiveLoop, Session, TextClassifier
"""

from __future__ import annotations

from .functional.lazy import lazy_exports


__version__ = "0.1.0"

#: Exported name -> the module defining it (imported when the name is first read).
_LAZY = {
    "TextClassifier": "lit_al.model",
    "ActiveDataModule": "lit_al.data.module",
    "ActiveLoop": "lit_al.loop",
    "Session": "lit_al.session",
}

__all__ = ["__version__", *_LAZY]


__getattr__, __dir__ = lazy_exports('lit_al', _LAZY, globals())
