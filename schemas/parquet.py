"""Parquet shards: one row per example, metadata as columns, codes as list<list<int16>>."""
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.shards import AtomicFile

CODES_TYPE = pa.list_(pa.list_(pa.int16()))
AUGMENTATION_TYPE = pa.struct([('pitch_semitones', pa.float64()), ('tempo', pa.float64()), ('gain_db', pa.float64())])
# Effects have different parameters: each step's params are a JSON object in a string.
DISTORTION_TYPE = pa.list_(pa.struct([('name', pa.string()), ('params', pa.string())]))
SCHEMA = pa.schema([
    ('example_id', pa.string()), ('song_id', pa.string()), ('artist', pa.string()), ('title', pa.string()),
    ('source', pa.string()), ('split', pa.string()), ('target_stem', pa.string()),
    ('target_instrument', pa.string()), ('context_stems', pa.list_(pa.string())), ('assortment', pa.int32()),
    ('variant', pa.int32()), ('chunk_index', pa.int32()), ('start_seconds', pa.float64()),
    ('duration_seconds', pa.float64()), ('mix_gain', pa.float64()), ('codec', pa.string()),
    ('codec_weights', pa.string()), ('frame_rate', pa.float64()), ('sample_rate_hz', pa.int32()),
    ('context_waveform_id', pa.string()), ('target_waveform_id', pa.string()),
    ('context_scale', pa.float64()), ('target_scale', pa.float64()),
    ('target_label', pa.string()), ('target_labels', pa.list_(pa.string())), ('donors', pa.list_(pa.string())),
    ('donor_song_ids', pa.list_(pa.string())), ('donor_splits', pa.list_(pa.string())), ('bleed_stems', pa.list_(pa.string())),
    ('augmentation', AUGMENTATION_TYPE), ('distortion', DISTORTION_TYPE),
    ('context_codes', CODES_TYPE), ('target_codes', CODES_TYPE),
])


def codes_array(codes) -> pa.Array:
    """A list of int16 ``[codebooks, frames]`` arrays -> list<list<int16>> without Python loops."""
    inner_lengths = [c.shape[1] for c in codes for _ in range(c.shape[0])]
    inner_offsets = np.concatenate([[0], np.cumsum(inner_lengths)]).astype(np.int32)
    outer_offsets = np.concatenate([[0], np.cumsum([c.shape[0] for c in codes])]).astype(np.int32)
    flat = np.concatenate([c.reshape(-1) for c in codes]) if codes else np.zeros(0, np.int16)
    inner = pa.ListArray.from_arrays(pa.array(inner_offsets), pa.array(flat.astype(np.int16)))
    return pa.ListArray.from_arrays(pa.array(outer_offsets), inner).cast(CODES_TYPE)


def table_of(examples) -> pa.Table:
    columns = {name: [] for name in SCHEMA.names}
    for example in examples:
        for key, value in example.meta.to_dict().items():
            if key == 'distortion':
                value = [{'name': d['name'], 'params': json.dumps(d['params'], sort_keys=True)} for d in value]
            columns[key].append(list(value) if isinstance(value, (list, tuple)) else value)
    columns['context_codes'] = codes_array([e.context_codes for e in examples])
    columns['target_codes'] = codes_array([e.target_codes for e in examples])
    return pa.table({name: columns[name] if isinstance(columns[name], pa.Array)
                     else pa.array(columns[name], type=SCHEMA.field(name).type) for name in SCHEMA.names},
                    schema=SCHEMA)


class ParquetWriter:
    """Collects a shard's rows and writes them as one Parquet file, atomically."""

    def __init__(self, path: str, table_fn=None, row_group_size=None):
        """``table_fn``: records -> the shard's Arrow table (default: continuation examples');
        ``row_group_size``: rows per row group (default: pyarrow's)."""
        self.path = path
        self._row_group_size = row_group_size
        self._table_fn = table_fn or table_of
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
