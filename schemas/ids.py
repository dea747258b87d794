"""Stable ids and seeded random generators.

Every id is a hash of what made it; every random choice draws from a generator
seeded by the global seed and such an id. Python's built-in ``hash()`` is salted
per process and is never used.
"""
import hashlib
import json

import numpy as np


def _digest(parts) -> bytes:
    payload = json.dumps(list(parts), sort_keys=True, separators=(',', ':'), default=str)
    return hashlib.sha256(payload.encode('utf-8')).digest()


def stable_id(*parts, length: int = 16) -> str:
    """Returns a hex id of ``length`` characters that depends only on ``parts``."""
    return _digest(parts).hex()[:length]


def stable_fraction(*parts) -> float:
    """Maps ``parts`` to a float in [0, 1), uniformly and stably."""
    return int.from_bytes(_digest(parts)[:8], 'big') / 2.0**64


def seeded_rng(seed: int, *parts) -> np.random.Generator:
    """A numpy generator seeded from the global seed and ``parts`` only."""
    return np.random.Generator(np.random.PCG64(int.from_bytes(_digest((seed,) + parts)[:16], 'big')))
