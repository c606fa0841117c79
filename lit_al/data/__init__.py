"""Data: readers, label schema, scenarios, label state and the LightningDataModule."""

from .module import ActiveDataModule
from .scenarios import InitialSet
from .schema import LabelSchema
from .state import LabelRecord, LabelState

__all__ = ["ActiveDataModule", "InitialSet", "LabelRecord", "LabelSchema", "LabelState"]
