"""lit_al: active learning for transformer text classifiers on PyTorch Lightning."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``from lit_al import Session`` without importing torch and Lightning for ``lit_al --help``
    if name == "Session":
        from .session import Session

        return Session
    raise AttributeError(f"module 'lit_al' has no attribute {name!r}")
