"""The concept format (``--task=concept``'s): its records, WebDataset sample, Parquet schema,
writers and verify's check.

- ``ConceptMeta``/``ConceptFragment``: a fragment's metadata, int16 codes ``[codebooks, frames]``
  and the FLAC bytes of the (padded) audio the codes were made from.
- WebDataset: one sample per fragment. ``__key__`` = the fragment's id; ``audio.flac`` = the
  fragment as it was encoded (16-bit, at the codec's rate and channel count, padded to the full
  ``--chunk-seconds``); ``codes.npy`` = int16 ``[codebooks, frames]`` (no pickle); ``json`` = its
  metadata (concept, song, stem, fragment index, start, real duration, padded, codec).
- Parquet: one row per fragment, the same metadata as columns and ``codes`` as
  list<list<int16>>. No audio: it is in the tars and the folder export (transforms/tasks/concept_export.py).
- ``CHECK``: what ``pipelines.verify`` reads of both (schemas/format_check.py): codes against the
  manifest's codec and fragment frames, the audio's rate, channels and length.
"""
import io
import json
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa

from schemas.audio_io import decode_flac
from schemas.format_check import (ExampleFacts, FormatCheck, ShardFindings, check_codes, content_sha, parquet_codes,
                                  read_table, read_tar)
from schemas.parquet import CODES_TYPE, ParquetWriter, codes_array
from schemas.records import DictRecord
from schemas.webdataset import WebDatasetWriter, npy_bytes, npy_load


@dataclass(frozen=True)
class ConceptMeta(DictRecord):
    """Everything about one fragment except its codes and audio (the sample's json, the Parquet row)."""
    example_id: str
    song_id: str
    split: str
    concept: str                 # the label as the source has it (folder name or class)
    concept_dir: str             # its folder name under concept/<split>/ (concept_dir())
    source: str
    artist: Optional[str]
    title: str
    stem: str                    # the stem instance ('guitar#2'; 'mix' for a folder clip)
    instrument: str              # its canonical class
    stem_label: Optional[str]    # the source's own name of the stem
    fragment: int                # index in the stem, 0-based
    start_seconds: float
    duration_seconds: float      # real audio in the fragment; the rest up to num_samples is zeros
    padded: bool
    num_samples: int             # stored and encoded: always the full --chunk-seconds
    real_samples: int
    sample_rate_hz: int
    channels: int
    frames: int                  # code frames: always --chunk-seconds x frame rate
    real_frames: int             # frames that hear real audio (mask the rest)
    codec: str
    codec_weights: str
    frame_rate: float
    scale: Optional[float] = None   # the codec's input scale (normalising codecs, encodec_48khz)


@dataclass(frozen=True)
class ConceptFragment:
    """A finished fragment: metadata, int16 codes ``[codebooks, frames]`` and 16-bit FLAC bytes of
    the (padded) audio the codes were made from."""
    meta: ConceptMeta
    codes: np.ndarray
    audio_flac: bytes

    @property
    def example_id(self) -> str:
        return self.meta.example_id

def sample_of(fragment) -> dict:
    return {'__key__': fragment.example_id,
            'audio.flac': fragment.audio_flac,
            'codes.npy': npy_bytes(fragment.codes),
            'json': json.dumps(fragment.meta.to_dict(), sort_keys=True).encode('utf-8')}


def sample_bytes(fragment) -> int:
    """About what a fragment adds to a shard (for --shard-mb)."""
    return fragment.codes.nbytes + len(fragment.audio_flac) + 2048


class ConceptWebDatasetWriter(WebDatasetWriter):
    def __init__(self, path: str):
        super().__init__(path, sample_fn=sample_of)


SCHEMA = pa.schema([
    ('example_id', pa.string()), ('song_id', pa.string()), ('split', pa.string()), ('concept', pa.string()),
    ('concept_dir', pa.string()), ('source', pa.string()), ('artist', pa.string()), ('title', pa.string()),
    ('stem', pa.string()), ('instrument', pa.string()), ('stem_label', pa.string()), ('fragment', pa.int32()),
    ('start_seconds', pa.float64()), ('duration_seconds', pa.float64()), ('padded', pa.bool_()),
    ('num_samples', pa.int64()), ('real_samples', pa.int64()), ('sample_rate_hz', pa.int32()),
    ('channels', pa.int32()), ('frames', pa.int32()), ('real_frames', pa.int32()), ('codec', pa.string()),
    ('codec_weights', pa.string()), ('frame_rate', pa.float64()), ('scale', pa.float64()),
    ('codes', CODES_TYPE),
])


def table_of(fragments) -> pa.Table:
    rows = [f.meta.to_dict() for f in fragments]
    columns = {name: pa.array([row[name] for row in rows], type=SCHEMA.field(name).type)
               for name in SCHEMA.names if name != 'codes'}
    columns['codes'] = codes_array([f.codes for f in fragments])
    return pa.table([columns[name] for name in SCHEMA.names], schema=SCHEMA)


class ConceptParquetWriter(ParquetWriter):
    def __init__(self, path: str):
        super().__init__(path, table_fn=table_of)


WRITERS = {'webdataset': ConceptWebDatasetWriter, 'parquet': ConceptParquetWriter}


def _expected(manifest: dict, root: str) -> dict:
    codec, concept = manifest['codec'], manifest['concept']
    return {'codebooks': codec['codebooks'], 'codebook_size': codec['codebook_size'], 'frames': concept['frames'],
            'samples': concept['chunk_samples'], 'sample_rate_hz': codec['sample_rate_hz'],
            'channels': codec['channels']}


def _facts(split: str, meta: dict, codes) -> ExampleFacts:
    return ExampleFacts(split, meta.get('split'), meta.get('song_id'), meta.get('artist'), content_sha([codes]),
                        meta=(meta.get('concept'), meta.get('stem'), meta.get('fragment')))


def read_webdataset_shard(data: bytes, path: str, split: str, expected: dict):
    import soundfile

    def read(sample, meta, findings):
        key = sample['__key__']
        codes = npy_load(sample['codes.npy'])
        audio, rate = soundfile.read(io.BytesIO(sample['audio.flac']), always_2d=True)
        found = (rate, audio.shape[1], audio.shape[0])
        wanted = (expected['sample_rate_hz'], expected['channels'], expected['samples'])
        if found != wanted:
            findings.content_problems.append(f'{path}: {key} audio: {found[0]} Hz, {found[1]} channel(s), {found[2]} '
                                             f'samples; the manifest says {wanted[0]} Hz, {wanted[1]}, {wanted[2]}')
        check_codes(findings, path, key, 'codes', codes, expected)
        findings.examples.append((key, _facts(split, meta, codes)))
    return read_tar(data, path, read)


def read_parquet_shard(data: bytes, path: str, split: str, expected: dict):
    table, columns = read_table(data, ('example_id', 'split', 'song_id', 'artist', 'concept', 'stem', 'fragment'))
    codes = parquet_codes(table.column('codes'))
    findings = ShardFindings(count=table.num_rows)
    for i, key in enumerate(columns['example_id']):
        check_codes(findings, path, key, 'codes', codes[i], expected)
        array = codes[i] if codes[i] is not None else np.zeros(0, np.int16)
        findings.examples.append((key, _facts(split, {n: v[i] for n, v in columns.items()}, array)))
    return findings


CHECK = FormatCheck(
    readers={'webdataset': read_webdataset_shard, 'parquet': read_parquet_shard}, expected=_expected,
    content='codes and audio valid', decode_line='every sample decodes (npy without pickle, json, FLAC)',
    content_line=lambda e: (f'codes int16 [{e["codebooks"]}, {e["frames"]}] in [0, {e["codebook_size"]}); '
                            f'audio {e["samples"]} samples x {e["channels"]} at {e["sample_rate_hz"]} Hz'))


def decode_sample(raw: dict) -> dict:
    """A sample's tar members (``schemas.webdataset.tar_samples``) decoded: ``{'__key__', 'json':
    the metadata, 'codes': int16 [codebooks, frames], 'audio': float32 [channels, samples]}``."""
    return {'__key__': raw['__key__'], 'json': json.loads(raw['json']), 'codes': npy_load(raw['codes.npy']),
            'audio': decode_flac(raw['audio.flac'])}
