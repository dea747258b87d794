"""The continuation format (the default task's): its records, WebDataset sample, Parquet schema
and the writers of both.

- ``ExampleMeta``/``Example``: an example's metadata, int16 codes ``[codebooks, frames]`` of
  its context and target window and, with --write-audio, their FLAC bytes.
- WebDataset sample: ``__key__`` = example id; ``json`` = the metadata; ``context.npy`` and
  ``target.npy`` = the codes (no pickle); ``context.flac``/``target.flac`` with --write-audio.
- Parquet: one row per example, the metadata as columns (``SCHEMA``), codes as list<list<int16>>.

- ``CHECK``: what ``pipelines.verify`` reads of both (codes against the manifest's ``codec`` and
  ``windows``; schemas/format_check.py). The trainer's stream is ``schemas/reader.py``.
"""
import io
import json
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import pyarrow as pa

from schemas.format_check import (ExampleFacts, FormatCheck, ShardFindings, check_codes, content_sha, parquet_codes,
                                  read_table, read_tar)
from schemas.manifest import window_frames
from schemas.parquet import CODES_TYPE, ParquetWriter, codes_array
from schemas.records import DictRecord
from schemas.webdataset import WebDatasetWriter, npy_bytes, npy_load

CODE_FIELDS = ('context', 'target')


@dataclass(frozen=True)
class ExampleMeta(DictRecord):
    """Everything about an example except its codes and audio."""
    example_id: str
    song_id: str
    artist: Optional[str]
    title: str
    source: str
    split: str
    target_stem: str
    target_instrument: str
    context_stems: Tuple[str, ...]
    assortment: int
    variant: int
    chunk_index: int
    start_seconds: float
    duration_seconds: float
    mix_gain: float
    codec: str
    codec_weights: str
    frame_rate: float
    sample_rate_hz: int
    context_waveform_id: str
    target_waveform_id: str
    context_scale: Optional[float] = None
    target_scale: Optional[float] = None
    target_label: Optional[str] = None           # the source's own name of the target stem
    target_labels: Tuple[str, ...] = ()          # every source name of it (Slakh program and inst_class)
    donors: Tuple[str, ...] = ()                 # 'instance<-track/stem' of stems filled from the reserve
    donor_song_ids: Tuple[str, ...] = ()         # their reserve songs' ids, in the order of donors
    donor_splits: Tuple[str, ...] = ()           # and splits (always the example's own)
    bleed_stems: Tuple[str, ...] = ()            # stems of the example recorded with bleed
    augmentation: Optional[dict] = None          # {pitch_semitones, tempo, gain_db} of a variant
    distortion: Tuple[dict, ...] = ()            # [{name, params}] applied to the context


@dataclass(frozen=True)
class Example:
    """A finished example: metadata, int16 codes and, with --write-audio, FLAC bytes."""
    meta: ExampleMeta
    context_codes: np.ndarray
    target_codes: np.ndarray
    context_flac: Optional[bytes] = None
    target_flac: Optional[bytes] = None

    @property
    def example_id(self) -> str:
        return self.meta.example_id


def sample_of(example) -> dict:
    sample = {'__key__': example.example_id,
              'json': json.dumps(example.meta.to_dict(), sort_keys=True).encode('utf-8'),
              'context.npy': npy_bytes(example.context_codes),
              'target.npy': npy_bytes(example.target_codes)}
    if example.context_flac is not None:
        sample['context.flac'] = example.context_flac
    if example.target_flac is not None:
        sample['target.flac'] = example.target_flac
    return sample


def decode_sample(raw: dict) -> dict:
    """A sample's tar members (``schemas.webdataset.tar_samples``) decoded: ``{'__key__', 'json':
    the metadata, 'context', 'target': int16 [codebooks, frames]}`` (what the trainer's stream
    reads; the FLAC members, when stored, stay as they are).

    Raises:
        ValueError: context and target codes of different shapes.
    """
    context, target = npy_load(raw['context.npy']), npy_load(raw['target.npy'])
    if context.shape != target.shape:
        raise ValueError(f'{raw["__key__"]}: context {context.shape} and target {target.shape} differ')
    return {'__key__': raw['__key__'], 'json': json.loads(raw['json']), 'context': context, 'target': target}


def sample_bytes(example) -> int:
    """About what an example adds to a shard (for --shard-mb)."""
    return (example.context_codes.nbytes + example.target_codes.nbytes + 2048
            + len(example.context_flac or b'') + len(example.target_flac or b''))


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


class ContinuationWebDatasetWriter(WebDatasetWriter):
    """A WebDataset shard of continuation examples."""

    def __init__(self, path: str):
        super().__init__(path, sample_fn=sample_of)


class ContinuationParquetWriter(ParquetWriter):
    """A Parquet shard of continuation examples."""

    def __init__(self, path: str):
        super().__init__(path, table_fn=table_of)


WRITERS = {'webdataset': ContinuationWebDatasetWriter, 'parquet': ContinuationParquetWriter}


def _expected(manifest: dict, root: str) -> dict:
    codec = manifest['codec']
    return {'codebooks': codec['codebooks'], 'codebook_size': codec['codebook_size'],
            'frames': window_frames(manifest, root)}


def _facts(split: str, meta: dict, codes) -> ExampleFacts:
    return ExampleFacts(split, meta.get('split'), meta.get('song_id'), meta.get('artist'), content_sha(codes),
                        donor_song_ids=tuple(meta.get('donor_song_ids') or ()),
                        donor_splits=tuple(meta.get('donor_splits') or ()))


def read_webdataset_shard(data: bytes, path: str, split: str, expected: dict):
    import soundfile

    def read(sample, meta, findings):
        codes = [npy_load(sample[f'{name}.npy']) for name in CODE_FIELDS]
        for name in CODE_FIELDS:
            if f'{name}.flac' in sample:
                soundfile.read(io.BytesIO(sample[f'{name}.flac']))
        for name, array in zip(CODE_FIELDS, codes):
            check_codes(findings, path, sample['__key__'], name, array, expected)
        findings.examples.append((sample['__key__'], _facts(split, meta, codes)))
    return read_tar(data, path, read)


def read_parquet_shard(data: bytes, path: str, split: str, expected: dict):
    table, columns = read_table(data, ('example_id', 'split', 'song_id', 'artist', 'donor_song_ids', 'donor_splits'))
    codes = {name: parquet_codes(table.column(f'{name}_codes')) for name in CODE_FIELDS}
    findings = ShardFindings(count=table.num_rows)
    for i, key in enumerate(columns['example_id']):
        for name in CODE_FIELDS:
            check_codes(findings, path, key, name, codes[name][i], expected)
        arrays = [codes[name][i] if codes[name][i] is not None else np.zeros(0, np.int16) for name in CODE_FIELDS]
        findings.examples.append((key, _facts(split, {n: v[i] for n, v in columns.items()}, arrays)))
    return findings


CHECK = FormatCheck(
    readers={'webdataset': read_webdataset_shard, 'parquet': read_parquet_shard}, expected=_expected,
    content='codes valid', decode_line='every sample decodes (npy without pickle, json, FLAC)',
    content_line=lambda e: f'codes int16 [{e["codebooks"]}, {e["frames"]}] in [0, {e["codebook_size"]})')
