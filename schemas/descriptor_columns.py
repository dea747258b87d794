"""The descriptor table's columns and what the search compares.

``COLUMNS``: the 44 per-frame descriptors ``transforms/descriptor_features.py`` computes, in table
order. ``index_features`` turns them into the 45 numbers the search compares (rms in dB, f0 as a
voiced flag and log2 Hz); ``block_moments``, ``add_moments`` and ``z_stats`` give the z-scoring
statistics, summed exactly so they do not depend on the order blocks are added in.
"""
import math
from fractions import Fraction

import numpy as np

N_MFCC = 13
COLUMNS = ([f'mfcc_{i}' for i in range(N_MFCC)] + [f'mfcc_delta_{i}' for i in range(N_MFCC)]
           + [f'mfcc_delta2_{i}' for i in range(N_MFCC)]
           + ['spectral_centroid', 'spectral_flatness', 'spectral_rolloff', 'rms', 'f0'])
COLUMN = {name: i for i, name in enumerate(COLUMNS)}
# What the search compares: COLUMNS with rms in dB and f0 as (voiced flag, log2 Hz).
INDEX_FEATURES = COLUMNS[:COLUMN['rms']] + ['rms_db', 'voiced', 'log2_f0']
INDEX_TRANSFORMS = {'rms_db': '20 * log10(max(rms, 1e-5))', 'voiced': '1 where f0 is a number, else 0',
                    'log2_f0': 'log2(f0), NaN where unvoiced (0 after z-scoring: the mean)'}
RMS_DB_FLOOR = 1e-5

def index_features(descriptors: np.ndarray) -> np.ndarray:
    """``[frames, 44]`` descriptors -> float32 ``[frames, 45]`` in ``INDEX_FEATURES`` order
    (rms in dB; f0 as a voiced flag and log2 Hz, NaN where unvoiced)."""
    descriptors = np.asarray(descriptors, dtype=np.float32)
    rms_at, f0 = COLUMN['rms'], descriptors[:, COLUMN['f0']]
    voiced = np.isfinite(f0)
    rms_db = 20.0 * np.log10(np.maximum(descriptors[:, rms_at], RMS_DB_FLOOR))
    with np.errstate(invalid='ignore', divide='ignore'):
        log2_f0 = np.where(voiced, np.log2(np.where(voiced, f0, 1.0)), np.nan)
    return np.column_stack([descriptors[:, :rms_at], rms_db, voiced, log2_f0]).astype(np.float32)


# Exact sums: each float64 as an integer multiple of 2**-EXACT_BITS, so sums do not depend on
# the order in which blocks and workers add up (the stats are byte-identical on any runner).
EXACT_BITS = 1100


def _exact(value: float) -> int:
    numerator, denominator = float(value).as_integer_ratio()
    return numerator * ((1 << EXACT_BITS) // denominator)


def block_moments(features: np.ndarray) -> tuple:
    """(counts, sums, sums of squares) per column of ``[frames, features]``, NaNs left out,
    as exact integers (see ``EXACT_BITS``)."""
    values = np.asarray(features, dtype=np.float64)
    finite = np.isfinite(values)
    zeroed = np.where(finite, values, 0.0)
    return (tuple(int(c) for c in finite.sum(axis=0)), tuple(_exact(s) for s in zeroed.sum(axis=0)),
            tuple(_exact(s) for s in (zeroed ** 2).sum(axis=0)))


def add_moments(a: tuple, b: tuple) -> tuple:
    return tuple(tuple(x + y for x, y in zip(pa, pb)) for pa, pb in zip(a, b))


def z_stats(moments: tuple) -> tuple:
    """(mean, std) lists from summed ``block_moments`` (population std; 0 or no data -> std 1)."""
    means, stds = [], []
    for count, total, squares in zip(*moments):
        if count == 0:
            means.append(0.0)
            stds.append(1.0)
            continue
        mean = Fraction(total, count << EXACT_BITS)
        variance = max(Fraction(squares, count << EXACT_BITS) - mean * mean, Fraction(0))
        std = math.sqrt(variance)
        means.append(float(mean))
        stds.append(std if std > 1e-12 else 1.0)
    return means, stds
