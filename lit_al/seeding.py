"""Independent seeds derived from one run seed, so no stream is shared by two consumers."""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(base: int, *keys: int | str) -> int:
    """A 31-bit seed from ``base`` and a path of keys (e.g. ``(seed, round, "strategy")``)."""
    words = [int(base) & 0xFFFFFFFF] + [k & 0xFFFFFFFF if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0] & 0x7FFFFFFF)
