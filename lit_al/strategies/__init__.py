"""Query strategies: the contract, the registry and the built-in families."""

from ..outputs.catalog import PredictionRequest
from .base import Selection, Strategy, top_scored
from .registry import get_strategy, register_strategy, registered_strategies, strategy_class

__all__ = [
    "PredictionRequest",
    "Selection",
    "Strategy",
    "get_strategy",
    "register_strategy",
    "registered_strategies",
    "strategy_class",
    "top_scored",
]
