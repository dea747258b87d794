"""Parquet shards: one row per example, written by ``ParquetWriter`` from each format's table
function (schemas/continuation.py, ...); codes as list<list<int16>> (``codes_array``, ``codes_of``)."""
import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.shards import AtomicFile

CODES_TYPE = pa.list_(pa.list_(pa.int16()))


def codes_array(codes) -> pa.Array:
    """A list of int16 ``[codebooks, frames]`` arrays -> list<list<int16>> without Python loops."""
    inner_lengths = [c.shape[1] for c in codes for _ in range(c.shape[0])]
    inner_offsets = np.concatenate([[0], np.cumsum(inner_lengths)]).astype(np.int32)
    outer_offsets = np.concatenate([[0], np.cumsum([c.shape[0] for c in codes])]).astype(np.int32)
    flat = np.concatenate([c.reshape(-1) for c in codes]) if codes else np.zeros(0, np.int16)
    inner = pa.ListArray.from_arrays(pa.array(inner_offsets), pa.array(flat.astype(np.int16)))
    return pa.ListArray.from_arrays(pa.array(outer_offsets), inner).cast(CODES_TYPE)


class ParquetWriter:
    """Collects a shard's rows and writes them as one Parquet file, atomically."""

    def __init__(self, path: str, table_fn, row_group_size=None):
        """``table_fn``: records -> the shard's Arrow table (each format's own);
        ``row_group_size``: rows per row group (default: pyarrow's)."""
        self.path = path
        self._row_group_size = row_group_size
        self._table_fn = table_fn
        self._examples = []
        self.bytes = 0
        self.sha256 = None

    def write(self, example) -> None:
        self._examples.append(example)

    @property
    def examples(self) -> int:
        return len(self._examples)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            return False
        buf = io.BytesIO()
        pq.write_table(self._table_fn(self._examples), buf, compression='zstd', row_group_size=self._row_group_size)
        with AtomicFile(self.path) as handle:
            handle.write(buf.getvalue())
        self.bytes, self.sha256 = handle.bytes, handle.sha256
        return False

    @property
    def output_paths(self):
        return [self.path]


def codes_of(row_codes) -> np.ndarray:
    """A list<list<int16>> cell (as Python lists) -> int16 ``[codebooks, frames]``."""
    return np.asarray(row_codes, dtype=np.int16)
