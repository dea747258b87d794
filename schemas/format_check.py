"""What ``pipelines.verify`` reads from a format's shards, declared by the format's module.

Each format module (schemas/continuation.py, schemas/separation.py, schemas/concept.py,
schemas/descriptors.py) ends with a ``CHECK``: its shard readers, which turn one shard's bytes
into ``ShardFindings`` (the examples' ``ExampleFacts``, what does not decode, what is not as the
manifest says), and the names and lines of its content check. The checks themselves (counts,
decoding, content, formats agreeing, unique ids, no leakage) are the same for every format
(pipelines/verify_examples.py).
"""
import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pyarrow.parquet as pq

from schemas.webdataset import tar_samples


@dataclass
class ExampleFacts:
    """What the checks need of one example, from one format."""
    shard_split: str                 # the split whose shard holds it
    split: str                       # the split its metadata names
    song_id: str
    artist: Optional[str]
    content_sha: Optional[str]       # of what both formats hold (codes); None: this format holds none
    meta: tuple = ()                 # fields both formats must agree on, besides split, song and artist
    donor_song_ids: tuple = ()
    donor_splits: tuple = ()


@dataclass
class ShardFindings:
    """What one shard holds: the examples the manifest counts, and what is wrong with them."""
    count: int = 0
    examples: List[Tuple[str, ExampleFacts]] = field(default_factory=list)
    decode_problems: List[str] = field(default_factory=list)
    content_problems: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class FormatCheck:
    """A format's part of verify. ``readers``: shard format -> ``read(data, path, split, expected)
    -> ShardFindings``; ``expected(manifest, root)``: what every example's content is checked
    against (from the manifest, never the options); ``content``: the content check's name;
    ``content_line(expected)``, ``decode_line``, ``counted_line`` and ``agree_line``: the PASS
    lines; ``units``: what a shard of each format counts, as the manifest does."""
    readers: Dict[str, Callable]
    expected: Callable[[dict, str], dict]
    content: str
    content_line: Callable[[dict], str]
    decode_line: str
    counted_line: str = 'tar samples and Parquet rows'
    agree_line: str = 'WebDataset and Parquet hold the same examples and codes'
    units: Dict[str, str] = field(default_factory=lambda: {'webdataset': 'samples', 'parquet': 'rows'})


def codes_problem(codes: np.ndarray, codebooks: int, codebook_size: int, frames: int) -> str:
    """'' when ``codes`` are int16 ``[codebooks, frames]`` in ``[0, codebook_size)``, else what is wrong."""
    if codes.dtype != np.int16:
        return f'dtype {codes.dtype}, expected int16'
    if codes.shape != (codebooks, frames):
        return f'shape {codes.shape}, expected {(codebooks, frames)}'
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        return f'codes in [{codes.min()}, {codes.max()}], outside [0, {codebook_size})'
    return ''


def check_codes(findings: ShardFindings, path: str, key: str, name: str, codes, expected: dict) -> None:
    """Records a content problem when ``codes`` (None: ragged or empty lists) are not int16
    ``[codebooks, frames]`` in ``[0, codebook_size)`` by ``expected``."""
    problem = ('ragged or empty code lists' if codes is None
               else codes_problem(codes, expected['codebooks'], expected['codebook_size'], expected['frames']))
    if problem:
        findings.content_problems.append(f'{path}: {key} {name}: {problem}')


def content_sha(arrays) -> str:
    """sha256 of int16 code arrays, the same whichever format they were read from."""
    sha = hashlib.sha256()
    for codes in arrays:
        sha.update(np.ascontiguousarray(codes, dtype=np.int16).tobytes())
    return sha.hexdigest()


def parquet_codes(column) -> list:
    """A list<list<int>> column -> one ``[rows, frames]`` array per cell (None where ragged or empty)."""
    outer = column.combine_chunks()
    outer_offsets = outer.offsets.to_numpy()
    inner = outer.flatten()
    inner_offsets = inner.offsets.to_numpy()
    flat = inner.flatten().to_numpy(zero_copy_only=False)
    out = []
    for i in range(len(outer)):
        a, b = outer_offsets[i], outer_offsets[i + 1]
        lengths = np.diff(inner_offsets[a:b + 1])
        if b == a or len(set(lengths.tolist())) != 1:
            out.append(None)
        else:
            out.append(flat[inner_offsets[a]:inner_offsets[b]].reshape(b - a, -1))
    return out


def read_tar(data: bytes, path: str, read_sample: Callable) -> ShardFindings:
    """Every sample of a tar shard through ``read_sample(sample, meta, findings)`` (json parsed);
    a sample that raises is a decode problem naming the shard and key."""
    findings = ShardFindings()
    for sample in tar_samples([{'url': path, 'stream': io.BytesIO(data)}]):
        findings.count += 1
        try:
            read_sample(sample, json.loads(sample['json']), findings)
        except Exception as e:   # any undecodable member is this check's finding
            findings.decode_problems.append(f'{path}: {sample["__key__"]}: {type(e).__name__}: {e}')
    return findings


def read_table(data: bytes, columns: tuple) -> Tuple[object, Dict[str, list]]:
    """A Parquet shard and the named columns as lists (None where a column is absent)."""
    table = pq.read_table(io.BytesIO(data))
    return table, {name: table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows
                   for name in columns}
