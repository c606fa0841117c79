"""``python -m lit_al ...``: the ``lit_al`` command."""

import sys

from .cli import main

sys.exit(main())
