"""Imports every module that registers output computers beyond the built-ins of ``prediction``."""

from . import prediction  # noqa: F401
from . import outputs_attention  # noqa: F401
from . import outputs_mc  # noqa: F401
from . import outputs_mlm  # noqa: F401
from . import outputs_gradients  # noqa: F401
