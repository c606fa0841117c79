"""Query strategies: the contract, the registry and the built-in families."""

from .base import PredictionRequest, Strategy
from .registry import get_strategy, register_strategy, registered_strategies, strategy_class

__all__ = [
    "PredictionRequest",
    "Strategy",
    "get_strategy",
    "register_strategy",
    "registered_strategies",
    "strategy_class",
]
