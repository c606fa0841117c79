"""Imports every built-in strategy module so that its classes register themselves."""

from . import uncertainty  # noqa: F401
from . import mii  # noqa: F401
from . import gradient  # noqa: F401
from . import auxiliary  # noqa: F401
from . import alden  # noqa: F401
from . import geometry  # noqa: F401
from . import bayesian  # noqa: F401
from . import cold_start  # noqa: F401
