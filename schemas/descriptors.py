"""The descriptors task's format: its records (``DescriptorMeta``, ``DescriptorBlock``), the Parquet
table (a shard format) and the search index parts.

- ``descriptors/split=<split>/part-NNNNN.parquet`` (``DescriptorParquetWriter``, one per shard
  through the shared sinks): one row per frame, hive-partitioned by split (the split is the
  folder, not a column): ``song_id``, ``stem``, ``frame``, ``sample_offset`` (= frame *
  hop_length), ``artist``, ``title`` and the 44 descriptors (float32,
  ``schemas.descriptor_columns.COLUMNS``; ``f0`` NaN where unvoiced). Rows sorted by
  (song_id, stem, frame); a (song, stem) never spans two files.
- ``descriptor-index/<split>/part-NNNNN.npy`` and ``.blocks.json`` (``write_index_part``, once
  the training statistics exist): the same blocks in the same order, z-scored
  (schemas/descriptor_index.py).
- ``CHECK``: what ``pipelines.verify`` reads of the table (schemas/format_check.py): the columns,
  each block's frames ``0..n-1`` in order at ``sample_offset = frame * hop_length``, every
  descriptor a number (``f0`` may be NaN).
"""
import io
import json
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.descriptor_index import INDEX_EXPORT, WIDTH, with_norms, zscore
from schemas.format_check import ExampleFacts, FormatCheck, ShardFindings
from schemas.manifest import ExportedFile
from schemas.parquet import ParquetWriter
from schemas.shards import AtomicFile, join, shard_path, write_atomic
from schemas.descriptor_columns import COLUMNS, INDEX_FEATURES, index_features
from schemas.records import DictRecord


@dataclass(frozen=True)
class DescriptorMeta(DictRecord):
    """Which audio a block of descriptor frames describes: one stem of a song, or its mix."""
    example_id: str
    song_id: str
    stem: str                    # the stem instance name, or 'mix' (the sum of the song's stems)
    split: str
    artist: Optional[str]
    title: str
    source: str
    sample_rate_hz: int
    hop_length: int
    num_samples: int
    duration_seconds: float


@dataclass(frozen=True)
class DescriptorBlock:
    """Descriptor frames of one (song, stem): float32 ``[frames, columns]`` in
    ``schemas.descriptor_columns.COLUMNS`` order; frame f is centred on sample
    ``f * hop_length`` of the stem (its ``sample_offset``)."""
    meta: DescriptorMeta
    features: np.ndarray

    @property
    def example_id(self) -> str:
        return self.meta.example_id

    @property
    def frames(self) -> int:
        return int(self.features.shape[0])

KEY_COLUMNS = (('song_id', pa.string()), ('stem', pa.string()), ('frame', pa.int32()), ('sample_offset', pa.int64()),
               ('artist', pa.string()), ('title', pa.string()))
SCHEMA = pa.schema(list(KEY_COLUMNS) + [(name, pa.float32()) for name in COLUMNS])
ROW_GROUP_ROWS = 65536


def ordered(blocks) -> list:
    """Blocks in the order every file of a shard holds them: by song_id, then stem."""
    return sorted(blocks, key=lambda b: (b.meta.song_id, b.meta.stem))


def block_bytes(block) -> int:
    """About what a block adds to its table part and index part (for --shard-mb)."""
    return block.frames * 4 * (len(COLUMNS) + WIDTH + 6) + 256


def table_of(blocks) -> pa.Table:
    """Blocks (in order) -> the Parquet table, built column-wise without per-row Python work."""
    frames = np.array([b.frames for b in blocks], dtype=np.int64)
    which = pa.array(np.repeat(np.arange(len(blocks)), frames))
    frame = np.concatenate([np.arange(n, dtype=np.int32) for n in frames])
    hops = np.repeat(np.array([b.meta.hop_length for b in blocks], dtype=np.int64), frames)
    columns = {'frame': pa.array(frame), 'sample_offset': pa.array(frame.astype(np.int64) * hops)}
    for name in ('song_id', 'stem', 'artist', 'title'):
        columns[name] = pc.take(pa.array([getattr(b.meta, name) for b in blocks], type=pa.string()), which)
    values = np.concatenate([b.features for b in blocks]).astype(np.float32, copy=False)
    for i, name in enumerate(COLUMNS):
        columns[name] = pa.array(np.ascontiguousarray(values[:, i]))
    return pa.table([columns[name] for name in SCHEMA.names], schema=SCHEMA)


class DescriptorParquetWriter(ParquetWriter):
    """Collects a shard's blocks; writes them as one Parquet file (ordered), atomically."""

    def __init__(self, path: str):
        super().__init__(path, table_fn=_ordered_table, row_group_size=ROW_GROUP_ROWS)


def _ordered_table(blocks) -> pa.Table:
    return table_of(ordered(blocks))


def blocks_document(blocks) -> dict:
    """The rows of each (song, stem) in an index part: ``first_row`` and ``frames``."""
    first, listed = 0, []
    for block in blocks:
        meta = block.meta
        listed.append({'song_id': meta.song_id, 'stem': meta.stem, 'split': meta.split, 'artist': meta.artist,
                       'title': meta.title, 'first_row': first, 'frames': block.frames})
        first += block.frames
    return {'columns': INDEX_FEATURES + ['squared_norm'], 'rows': first, 'blocks': listed}


WRITERS = {'descriptors': DescriptorParquetWriter}


def write_index_part(root: str, split: str, index: int, blocks, stats: dict) -> list:
    """Writes index part ``index`` of ``split`` (the blocks of table part ``index``, z-scored
    with ``stats``) and its block listing; returns their ExportedFiles."""
    blocks = ordered(blocks)
    mean, std = stats['mean'], stats['std']
    matrix_path = shard_path('descriptor-index', split, index)
    with AtomicFile(join(root, matrix_path)) as handle:          # streamed: header, then block by block
        np.lib.format.write_array_header_1_0(handle, {'descr': '<f4', 'fortran_order': False,
                                                      'shape': (sum(b.frames for b in blocks), WIDTH)})
        for block in blocks:
            handle.write(with_norms(zscore(index_features(block.features), mean, std)).tobytes())
    blocks_path = shard_path('descriptor-blocks', split, index)
    size, sha256 = write_atomic(join(root, blocks_path),
                                json.dumps(blocks_document(blocks), sort_keys=True).encode('utf-8'))
    return [ExportedFile(export=INDEX_EXPORT, path=matrix_path, bytes=handle.bytes, sha256=handle.sha256),
            ExportedFile(export=INDEX_EXPORT, path=blocks_path, bytes=size, sha256=sha256)]


def _expected(manifest: dict, root: str) -> dict:
    return {'hop_length': manifest['descriptors']['hop_length'], 'columns': SCHEMA.names}


def _block_problem(offsets: np.ndarray, frames: np.ndarray, values: np.ndarray, hop: int) -> str:
    if not np.array_equal(frames, np.arange(len(frames))):
        return f'frames are not 0..{len(frames) - 1} in order'
    if not np.array_equal(offsets, frames.astype(np.int64) * hop):
        return f'sample_offset is not frame x {hop}'
    bad = [COLUMNS[i] for i in np.flatnonzero(~np.isfinite(values).all(axis=0)) if COLUMNS[i] != 'f0']
    return f'not a number in {bad}' if bad else ''


def read_table_shard(data: bytes, path: str, split: str, expected: dict):
    import pyarrow.parquet as pq
    table = pq.read_table(io.BytesIO(data))
    findings = ShardFindings()
    if table.column_names != expected['columns']:
        findings.content_problems.append(f'{path}: columns {table.column_names}, expected {expected["columns"]}')
        return findings
    songs, stems = table.column('song_id').to_numpy(zero_copy_only=False), table.column('stem').to_numpy(zero_copy_only=False)
    frames, offsets = table.column('frame').to_numpy(), table.column('sample_offset').to_numpy()
    values = np.stack([table.column(name).to_numpy() for name in COLUMNS], axis=1)
    artists = table.column('artist').to_pylist()
    starts = [0] + [i for i in range(1, table.num_rows) if (songs[i], stems[i]) != (songs[i - 1], stems[i - 1])]
    for a, b in zip(starts, starts[1:] + [table.num_rows]):
        key = f'{songs[a]}/{stems[a]}'
        problem = _block_problem(offsets[a:b], frames[a:b], values[a:b], expected['hop_length'])
        if problem:
            findings.content_problems.append(f'{path}: {key}: {problem}')
        findings.examples.append((key, ExampleFacts(split, split, songs[a], artists[a], None)))
    findings.count = len(findings.examples) if table.num_rows else 0
    return findings


CHECK = FormatCheck(
    readers={'descriptors': read_table_shard}, expected=_expected, content='rows valid',
    decode_line='every table part reads', counted_line='(song, stem) blocks of the tables',
    units={'descriptors': '(song, stem) blocks'},
    content_line=lambda e: (f'{len(e["columns"])} columns; every block\'s frames in order, sample_offset = '
                            f'frame x {e["hop_length"]}; descriptors are numbers (f0 NaN where unvoiced)'))
