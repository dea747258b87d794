"""Source-separation datasets (``--task=separation``): the records that flow and the on-disk formats.

WebDataset: one sample per chunk. ``__key__`` = example id; ``json`` = metadata;
``mixture.flac`` and ``<target>.flac`` for every target, 24-bit FLAC at the task's rate and
channel count. The mixture is the sum of all the song's stems; with ``other`` among the
targets it equals the sum of the targets up to the 24-bit step of each file.

Parquet: an index, one row per chunk and no audio: where the sample is (WebDataset shard and
key, the folder export's track), its offsets, the RMS of the mixture and of each target, and
which targets are silent (the song has no such stem) or filled from the reserve.

``CHECK``: what ``pipelines.verify`` reads of both (schemas/format_check.py): every FLAC at the
manifest's rate, channels and chunk length, the mixture the sum of the targets when ``other`` is
one of them, and every index row naming a listed tar of its split.
"""
import io
import json
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np
import pyarrow as pa

from schemas.audio_io import decode_flac, rms_dbfs
from schemas.format_check import ExampleFacts, FormatCheck, ShardFindings, read_table, read_tar
from schemas.parquet import ParquetWriter
from schemas.records import LoadedSong, SongRef, DictRecord
from schemas.shards import shard_path
from schemas.webdataset import WebDatasetWriter

# 24-bit files (schemas.audio_io.encode_pcm24): one step is 2**-23 of full scale, so the mixture and
# the sum of N targets, each rounded to the nearest step, differ by at most (N + 1) * 2**-24 per
# sample (plus float32 rounding of the sums). WAV exports hold the very same samples.
FLAC_SUBTYPE = 'PCM_24'
MIXTURE = 'mixture'
# The RMS recorded for digital silence (and anything quieter), in dBFS: JSON has no -inf.
RMS_FLOOR_DB = -120.0


def level_db(audio: np.ndarray) -> float:
    """RMS in dBFS, floored at RMS_FLOOR_DB and rounded to 0.001 dB."""
    return round(max(rms_dbfs(audio), RMS_FLOOR_DB), 3)


@dataclass(frozen=True)
class SeparatedSong:
    """A song as a mixture and its targets, whole, at the task's rate and channel count.
    ``mixture`` and every target are scaled by ``gain`` (1.0 unless their sum would clip)."""
    ref: SongRef
    split: str
    sample_rate_hz: int
    mixture: np.ndarray                              # [channels, samples] float32
    targets: Tuple[Tuple[str, np.ndarray], ...]      # (target name, [channels, samples]) in target order
    gain: float = 1.0
    target_stems: Dict[str, Tuple[str, ...]] = field(default_factory=dict)   # target -> stem instances
    silent_targets: Tuple[str, ...] = ()             # all-zero: the song has no stem for them
    filled_targets: Dict[str, str] = field(default_factory=dict)             # target -> reserve donor
    bleed_stems: Tuple[str, ...] = ()
    track: str = ''                                  # the track's folder name in the folder export

    @property
    def num_samples(self) -> int:
        return self.mixture.shape[-1]

    @property
    def duration_seconds(self) -> float:
        return self.num_samples / self.sample_rate_hz

    @classmethod
    def of(cls, song: LoadedSong, **fields):
        return cls(ref=song.ref, split=song.split, sample_rate_hz=song.sample_rate_hz, **fields)


@dataclass(frozen=True)
class SeparationMeta(DictRecord):
    """Everything about one chunk except its audio (the sample's json and the index row)."""
    example_id: str
    song_id: str
    artist: Optional[str]
    title: str
    track: str
    source: str
    split: str
    chunk_index: int
    start_sample: int
    start_seconds: float
    num_samples: int
    duration_seconds: float
    padded_samples: int                  # zeros after the song's end (--keep-partial)
    sample_rate_hz: int
    channels: int
    gain: float                          # applied to the mixture and every target of the song
    targets: Tuple[str, ...]             # member names, in target order
    target_labels: Dict[str, str]        # target -> what the user asked for ('Electric Bass (pick)', 'drums')
    target_stems: Dict[str, list]        # target -> the song's stem instances summed into it
    mixture_rms_db: float
    target_rms_db: Dict[str, float]
    silent_targets: Tuple[str, ...] = ()
    filled_targets: Dict[str, str] = field(default_factory=dict)
    bleed_stems: Tuple[str, ...] = ()
    folder_path: Optional[str] = None    # the track's folder with --export=folders


@dataclass(frozen=True)
class SeparationExample:
    """One chunk: metadata, the mixture's and each target's FLAC bytes."""
    meta: SeparationMeta
    mixture_flac: bytes
    target_flacs: Tuple[Tuple[str, bytes], ...]

    @property
    def example_id(self) -> str:
        return self.meta.example_id


def sample_of(example: SeparationExample) -> dict:
    sample = {'__key__': example.example_id,
              'json': json.dumps(example.meta.to_dict(), sort_keys=True).encode('utf-8'),
              f'{MIXTURE}.flac': example.mixture_flac}
    sample.update((f'{name}.flac', data) for name, data in example.target_flacs)
    return sample


def sample_bytes(example: SeparationExample) -> int:
    """About what a chunk adds to a shard (for --shard-mb)."""
    return 2048 + len(example.mixture_flac) + sum(len(data) for _, data in example.target_flacs)


class SeparationWebDatasetWriter(WebDatasetWriter):
    """A WebDataset shard of separation samples."""

    def __init__(self, path: str):
        super().__init__(path, sample_fn=sample_of)


_STR_MAP = pa.map_(pa.string(), pa.string())
SCHEMA = pa.schema([
    ('example_id', pa.string()), ('song_id', pa.string()), ('artist', pa.string()), ('title', pa.string()),
    ('track', pa.string()), ('source', pa.string()), ('split', pa.string()),
    ('webdataset_shard', pa.string()), ('webdataset_key', pa.string()), ('folder_path', pa.string()),
    ('chunk_index', pa.int32()), ('start_sample', pa.int64()), ('start_seconds', pa.float64()),
    ('num_samples', pa.int64()), ('duration_seconds', pa.float64()), ('padded_samples', pa.int64()),
    ('sample_rate_hz', pa.int32()), ('channels', pa.int32()), ('gain', pa.float64()),
    ('targets', pa.list_(pa.string())), ('target_labels', _STR_MAP),
    ('target_stems', pa.map_(pa.string(), pa.list_(pa.string()))),
    ('mixture_rms_db', pa.float64()), ('target_rms_db', pa.map_(pa.string(), pa.float64())),
    ('silent_targets', pa.list_(pa.string())), ('filled_targets', _STR_MAP), ('bleed_stems', pa.list_(pa.string())),
])


def index_row(meta: SeparationMeta, webdataset_shard: str) -> dict:
    """An index row; maps keep the target order."""
    row = meta.to_dict()
    order = list(meta.targets)
    for name in ('target_labels', 'target_stems', 'target_rms_db'):
        row[name] = [(t, row[name][t]) for t in order if t in row[name]]
    row['filled_targets'] = sorted(row['filled_targets'].items())
    return dict(row, webdataset_shard=webdataset_shard, webdataset_key=meta.example_id)


class SeparationIndexWriter(ParquetWriter):
    """The Parquet index of one shard: one row per chunk, naming the WebDataset shard and key that
    hold its audio. Written once, atomically, when the shard is complete."""

    def __init__(self, path: str, webdataset_shard: Optional[str] = None):
        super().__init__(path, table_fn=self._index_table)
        self.webdataset_shard = webdataset_shard

    @classmethod
    def for_shard(cls, path: str, split: str, index: int):
        """The writer of shard ``index`` of ``split``: its rows point into that shard's tar."""
        return cls(path, shard_path('webdataset', split, index))

    def _index_table(self, examples) -> pa.Table:
        rows = [index_row(example.meta, self.webdataset_shard) for example in examples]
        return pa.Table.from_pylist([{name: row.get(name) for name in SCHEMA.names} for row in rows],
                                    schema=SCHEMA)


WRITERS = {'webdataset': SeparationWebDatasetWriter, 'parquet': SeparationIndexWriter}


def decode_sample(sample: dict) -> dict:
    """A read sample (``schemas.webdataset.read_samples``) with its FLAC members decoded:
    ``{'__key__', 'json', 'mixture': float32 [channels, samples], '<target>': ...}``."""
    out = {k: v for k, v in sample.items() if not k.endswith('.flac')}
    out.update((k[:-len('.flac')], decode_flac(v)) for k, v in sample.items() if k.endswith('.flac'))
    return out


def _expected(manifest: dict, root: str) -> dict:
    info = manifest['separation']
    tars = {split: sorted(s['path'] for s in stats['shards'].get('webdataset', []))
            for split, stats in manifest['splits'].items()}
    return {'targets': list(info['targets']), 'sample_rate_hz': info['sample_rate_hz'],
            'channels': info['channels'], 'samples': info['chunk_samples'], 'tars': tars}


def _facts(split: str, meta: dict) -> ExampleFacts:
    return ExampleFacts(split, meta.get('split'), meta.get('song_id'), meta.get('artist'), None,
                        meta=(meta.get('chunk_index'), meta.get('start_sample'), tuple(meta.get('targets') or ())))


def _audio_problems(sample: dict, expected: dict) -> list:
    import soundfile
    wanted = (expected['sample_rate_hz'], expected['channels'], expected['samples'])
    names = [MIXTURE] + expected['targets']
    problems = [f'no {n}.flac' for n in names if f'{n}.flac' not in sample]
    audio = {}
    for name in names:
        if f'{name}.flac' in sample:
            audio[name], rate = soundfile.read(io.BytesIO(sample[f'{name}.flac']), dtype='float32', always_2d=True)
            found = (rate, audio[name].shape[1], audio[name].shape[0])
            if found != wanted:
                problems.append(f'{name}: {found[0]} Hz, {found[1]} channel(s), {found[2]} samples; the manifest '
                                f'says {wanted[0]} Hz, {wanted[1]}, {wanted[2]}')
    if 'other' in expected['targets'] and not problems:
        # With other among the targets the mixture is their sum, up to each 24-bit file's rounding.
        error = float(np.abs(audio[MIXTURE] - sum(audio[t] for t in expected['targets'])).max())
        if error > (len(names) + 1) * 2.0 ** -23:
            problems.append(f'the mixture differs from the sum of the targets by up to {error:.2e}')
    return problems


def read_webdataset_shard(data: bytes, path: str, split: str, expected: dict):
    def read(sample, meta, findings):
        key = sample['__key__']
        findings.content_problems += [f'{path}: {key} {p}' for p in _audio_problems(sample, expected)]
        findings.examples.append((key, _facts(split, meta)))
    return read_tar(data, path, read)


def read_parquet_shard(data: bytes, path: str, split: str, expected: dict):
    table, columns = read_table(data, ('example_id', 'split', 'song_id', 'artist', 'chunk_index', 'start_sample',
                                       'targets', 'webdataset_shard', 'webdataset_key'))
    findings = ShardFindings(count=table.num_rows)
    tars = expected['tars'].get(split, [])
    for i, key in enumerate(columns['example_id']):
        row = {n: v[i] for n, v in columns.items()}
        if row['webdataset_shard'] not in tars or row['webdataset_key'] != key:
            findings.content_problems.append(f'{path}: {key}: the index points at {row["webdataset_shard"]}:'
                                             f'{row["webdataset_key"]}, not a listed {split} tar and this key')
        findings.examples.append((key, _facts(split, row)))
    return findings


CHECK = FormatCheck(
    readers={'webdataset': read_webdataset_shard, 'parquet': read_parquet_shard}, expected=_expected,
    content='audio valid', decode_line='every sample decodes (json, FLAC)',
    agree_line='the WebDataset samples and the Parquet index hold the same chunks',
    content_line=lambda e: (f'mixture and {len(e["targets"])} target(s): {e["samples"]} samples x {e["channels"]} '
                            f'at {e["sample_rate_hz"]} Hz' + ('; mixture = sum of the targets' if 'other' in e['targets']
                                                               else '') + '; index rows point at their samples'))
