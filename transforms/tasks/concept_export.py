"""What ``--task=concept`` writes: its records (``ConceptMeta``, ``ConceptFragment``), WebDataset
and Parquet shards, the per-fragment folder layout and the trainers' metadata files.

WebDataset: one sample per fragment. ``__key__`` = the fragment's id; ``audio.flac`` = the
fragment as it was encoded (16-bit, at the codec's rate and channel count, padded to the full
``--chunk-seconds``); ``codes.npy`` = int16 ``[codebooks, frames]`` (no pickle); ``json`` = its
metadata (concept, song, stem, fragment index, start, real duration, padded, codec).

Parquet: one row per fragment, the same metadata as columns and ``codes`` as
list<list<int16>>. No audio: it is in the tars and the folders.

Folders: ``<out>/concept/<split>/<concept dir>/audio/<id>.wav`` (16-bit, the very samples of
audio.flac) and ``.../encoded/<id>.npy`` (the codes), each written atomically. Once every
fragment is written, ``<out>/metadata_train.json``, ``metadata_val.json`` and
``metadata_test.json`` (always all three): JSON arrays, sorted by concept, track, stem and
fragment, of
``{audio_path, encoded_path, concept, track_id, stem, fragment, duration_seconds}`` with paths
relative to the dataset root. Every file is listed in the manifest's ``exports`` with its bytes
and sha256.
"""
import io
import json
from dataclasses import dataclass
from typing import Optional

import apache_beam as beam
import numpy as np
import pyarrow as pa
import soundfile as sf
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from schemas.manifest import ExportedFile
from schemas.parquet import CODES_TYPE, ParquetWriter, codes_array
from schemas.records import DictRecord
from schemas.shards import join, write_atomic
from schemas.webdataset import WebDatasetWriter, npy_bytes


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

CONCEPT_ROOT = 'concept'
LAYOUT = f'{CONCEPT_ROOT}/<split>/<concept_dir>/{{audio,encoded}}/<example_id>.{{wav,npy}}'
# split -> metadata file at the dataset root (the names trainers of this layout read)
METADATA_FILES = {'train': 'metadata_train.json', 'validation': 'metadata_val.json', 'test': 'metadata_test.json'}
# The manifest's names of the two exports.
FRAGMENT_FILES = 'concept-folders'
METADATA = 'concept-metadata'
ENTRIES = 'entries'


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


def fragment_paths(meta) -> tuple:
    """(audio, encoded) paths of a fragment relative to the dataset root. Only ids, split names and
    sanitised concept folders (concept_dir) go into them, never a name read from the input."""
    folder = f'{CONCEPT_ROOT}/{meta.split}/{meta.concept_dir}'
    return f'{folder}/audio/{meta.example_id}.wav', f'{folder}/encoded/{meta.example_id}.npy'


def wav_of(flac: bytes) -> bytes:
    """16-bit WAV of a 16-bit FLAC's samples (read as integers: the very same samples)."""
    audio, rate = sf.read(io.BytesIO(flac), dtype='int16', always_2d=True)
    buf = io.BytesIO()
    sf.write(buf, audio, rate, format='WAV', subtype='PCM_16')
    return buf.getvalue()


class WriteFragmentFilesFn(beam.DoFn):
    """ConceptFragment -> ExportedFile of its .wav and .npy (written atomically), and its metadata
    entry (split, entry) on ``entries``."""

    def __init__(self, root: str):
        self.root = root
        self.files_written = Metrics.counter(self.__class__, 'files_written')

    def process(self, fragment):
        meta = fragment.meta
        audio_path, encoded_path = fragment_paths(meta)
        for relative, data in ((audio_path, wav_of(fragment.audio_flac)), (encoded_path, npy_bytes(fragment.codes))):
            size, sha256 = write_atomic(join(self.root, relative), data)
            self.files_written.inc()
            yield ExportedFile(export=FRAGMENT_FILES, path=relative, bytes=size, sha256=sha256)
        yield pvalue.TaggedOutput(ENTRIES, (meta.split, {
            'audio_path': audio_path, 'encoded_path': encoded_path, 'concept': meta.concept,
            'track_id': meta.song_id, 'stem': meta.stem, 'fragment': meta.fragment,
            'duration_seconds': meta.duration_seconds}))


def write_metadata(entries, root: str):
    """Writes every split's metadata file (an empty array when the split has no fragment), sorted
    by concept, track, stem and fragment; yields their ExportedFiles."""
    by_split = {split: [] for split in METADATA_FILES}
    for split, entry in entries:
        by_split[split].append(entry)
    for split, name in METADATA_FILES.items():
        rows = sorted(by_split[split], key=lambda e: (e['concept'], e['track_id'], e['stem'], e['fragment']))
        data = (json.dumps(rows, indent=1, sort_keys=True) + '\n').encode('utf-8')
        size, sha256 = write_atomic(join(root, name), data)
        yield ExportedFile(export=METADATA, path=name, bytes=size, sha256=sha256)


class ExportConcepts(beam.PTransform):
    """Fragments -> [ExportedFiles of the fragment files, ExportedFiles of the metadata files]; the
    metadata files are written after every fragment's files."""

    def __init__(self, root: str):
        super().__init__()
        self.root = root

    def expand(self, fragments):
        written = fragments | 'WriteFragmentFiles' >> beam.ParDo(
            WriteFragmentFilesFn(self.root)).with_outputs(ENTRIES, main='files')
        metadata = (written[ENTRIES]
                    | 'AllEntries' >> beam.combiners.ToList()
                    | 'WriteMetadata' >> beam.FlatMap(write_metadata, self.root))
        return [written.files, metadata]


def concept_counts(manifest: dict) -> dict:
    """{split: {concept folder: fragments}} from the manifest's list of fragment files."""
    counts = {}
    for entry in manifest.get('exports', {}).get(FRAGMENT_FILES, {}).get('paths', []):
        _, split, folder, kind, _ = entry['path'].split('/')
        if kind == 'encoded':
            counts.setdefault(split, {}).setdefault(folder, 0)
            counts[split][folder] += 1
    return {split: dict(sorted(c.items())) for split, c in sorted(counts.items())}
