"""The descriptor search index: z-scoring, its statistics, and opening it for a query.

numpy and the standard library only (no Beam, no pyarrow): ``pipelines.query`` starts fast.
Written by the descriptors task (schemas/descriptors.py, transforms/tasks/descriptors.py):

- ``descriptor-index/stats.json``: per index feature (``INDEX_FEATURES``) the mean and
  population standard deviation over the training rows, NaNs (unvoiced log2 f0) left out,
  summed exactly (the same bytes on any runner); from every split's rows when the build has
  no training rows (``from_splits`` says which).
- ``descriptor-index/<split>/part-NNNNN.npy``: float32 ``[rows, 46]``: the 45 index features
  z-scored with those statistics (unvoiced log2 f0 at the mean, 0) and, last, each row's
  squared norm; the rows of table part NNNNN in the same order (song_id, stem, frame).
- ``descriptor-index/<split>/part-NNNNN.blocks.json``: the rows of each (song, stem) in it.

The manifest lists all of them under ``exports`` (``descriptor-index``) with bytes and sha256.
"""
import json
import os
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from schemas.descriptor_columns import INDEX_FEATURES, INDEX_TRANSFORMS, add_moments, z_stats

STATS_PATH = 'descriptor-index/stats.json'
INDEX_EXPORT = 'descriptor-index'
TASK = 'descriptors'
F0_COLUMN = INDEX_FEATURES.index('log2_f0')
WIDTH = len(INDEX_FEATURES) + 1          # the features and the squared norm


class IndexUnusable(ValueError):
    """The index is missing, incomplete or not a descriptors dataset; the message says which."""


def stats_document(moments_by_split: dict, settings: dict) -> Optional[dict]:
    """stats.json from ``{split: summed block_moments}``; None when no rows were described."""
    rows = {split: int(m[0][0]) for split, m in sorted(moments_by_split.items())}
    chosen = ['train'] if rows.get('train') else [s for s, n in rows.items() if n]
    if not chosen:
        return None
    total = moments_by_split[chosen[0]]
    for split in chosen[1:]:
        total = add_moments(total, moments_by_split[split])
    mean, std = z_stats(total)
    return {'features': INDEX_FEATURES, 'mean': mean, 'std': std, 'count': list(total[0]),
            'from_splits': chosen, 'rows': sum(rows[s] for s in chosen), 'rows_by_split': rows,
            'transforms': INDEX_TRANSFORMS, 'descriptors': settings}


def stats_bytes(document: dict) -> bytes:
    return (json.dumps(document, indent=1, sort_keys=True) + '\n').encode('utf-8')


def zscore(features: np.ndarray, mean, std) -> np.ndarray:
    """Index features ``[rows, 45]`` -> float32 z-scores, unvoiced log2 f0 (NaN) at the mean (0)."""
    z = (np.asarray(features, dtype=np.float32) - np.asarray(mean, dtype=np.float32)) / np.asarray(std, np.float32)
    f0 = z[:, F0_COLUMN]
    f0[np.isnan(f0)] = 0.0
    return z


def with_norms(z: np.ndarray) -> np.ndarray:
    """``[rows, 45]`` z-scores -> float32 ``[rows, 46]`` rows of the index (squared norm last)."""
    norms = np.einsum('ij,ij->i', z.astype(np.float64), z.astype(np.float64))
    return np.column_stack([z, norms]).astype('<f4')


@dataclass
class IndexPart:
    """One part of the index: its rows (memory-mapped) and the rows of each (song, stem) in it."""
    matrix: np.ndarray              # float32 [rows, 46], z-scored, squared norm last
    first_rows: np.ndarray          # int64 [blocks]
    frames: np.ndarray              # int64 [blocks]
    blocks: List[dict]              # song_id, stem, split, artist, title, first_row, frames


@dataclass
class DescriptorIndex:
    root: str
    settings: dict                  # sample_rate_hz, hop_length, n_fft, ...
    mean: np.ndarray                # float32 [45]
    std: np.ndarray
    parts: List[IndexPart]

    @property
    def rows(self) -> int:
        return sum(len(p.matrix) for p in self.parts)


def _read_json(path: str, what: str) -> dict:
    try:
        with open(path, 'rb') as handle:
            return json.loads(handle.read().decode('utf-8'))
    except FileNotFoundError:
        raise IndexUnusable(f'{what} not found: {path}') from None
    except (OSError, ValueError) as e:
        raise IndexUnusable(f'{what} unreadable: {path} ({e})') from None


def _listed(root: str, entry: dict, what: str) -> str:
    """The local path of a file the manifest lists, checked against its recorded size."""
    path = os.path.join(root, *entry['path'].split('/'))
    try:
        size = os.path.getsize(path)
    except OSError:
        raise IndexUnusable(f'{what} missing: {path} (listed in the manifest)') from None
    if size != entry['bytes']:
        raise IndexUnusable(f'{what} damaged: {path} holds {size} bytes, the manifest says {entry["bytes"]}')
    return path


def open_index(root: str) -> DescriptorIndex:
    """Opens the index of the descriptors dataset at local ``root``, its parts memory-mapped.

    Raises:
        IndexUnusable: no dataset or manifest, another task's dataset, or a listed file missing or damaged.
    """
    if '://' in root:
        raise IndexUnusable(f'{root}: the query memory-maps the index; copy the dataset (manifest.json and '
                            f'descriptor-index/) to a local folder and give that')
    if not os.path.isdir(root):
        raise IndexUnusable(f'no dataset at {root} (give the --output of a --task=descriptors build)')
    manifest = _read_json(os.path.join(root, 'manifest.json'), 'manifest')
    if manifest.get('task') != TASK:
        raise IndexUnusable(f'{root} holds a {manifest.get("task", "continuation")} dataset; build one with '
                            f'--task=descriptors to query it')
    entries = {e['path']: e for e in manifest.get('exports', {}).get(INDEX_EXPORT, {}).get('paths', [])}
    if STATS_PATH not in entries:
        raise IndexUnusable(f'{root}: the manifest lists no {STATS_PATH} (the build described no audio)')
    stats = _read_json(_listed(root, entries[STATS_PATH], 'statistics'), 'statistics')
    if stats['features'] != INDEX_FEATURES:
        raise IndexUnusable(f'{root}: the index holds features {stats["features"]}, this version compares '
                            f'{INDEX_FEATURES}; rebuild it')
    parts = [_open_part(root, entry, entries.get(path[:-len('.npy')] + '.blocks.json'))
             for path, entry in sorted(entries.items()) if path.endswith('.npy')]
    return DescriptorIndex(root=root, settings=manifest['descriptors'], parts=parts,
                           mean=np.asarray(stats['mean'], dtype=np.float32),
                           std=np.asarray(stats['std'], dtype=np.float32))


def _open_part(root: str, matrix_entry: dict, blocks_entry) -> IndexPart:
    matrix_path = _listed(root, matrix_entry, 'index part')
    if blocks_entry is None:
        raise IndexUnusable(f'{matrix_path}: the manifest lists no .blocks.json beside it')
    listing = _read_json(_listed(root, blocks_entry, 'index blocks'), 'index blocks')
    try:
        matrix = np.load(matrix_path, mmap_mode='r', allow_pickle=False)
    except (OSError, ValueError) as e:
        raise IndexUnusable(f'index part unreadable: {matrix_path} ({e})') from None
    if matrix.dtype != np.float32 or matrix.shape != (listing['rows'], WIDTH):
        raise IndexUnusable(f'{matrix_path}: {matrix.dtype} {matrix.shape}, expected float32 '
                            f'({listing["rows"]}, {WIDTH})')
    blocks = listing['blocks']
    return IndexPart(matrix=matrix, blocks=blocks,
                     first_rows=np.array([b['first_row'] for b in blocks], dtype=np.int64),
                     frames=np.array([b['frames'] for b in blocks], dtype=np.int64))
