"""``python -m lit_al.cli ...`` (what DDP's torchrun and the experiment runner start): the ``lit_al`` command."""

import sys

from . import main

sys.exit(main())
