"""What ``--task=concept`` exports beside its shards (the format: schemas/concept.py): the
per-fragment folder layout and the trainers' metadata files.

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

import apache_beam as beam
import soundfile as sf
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from schemas.manifest import ExportedFile
from schemas.shards import join, write_atomic
from schemas.webdataset import npy_bytes


CONCEPT_ROOT = 'concept'
LAYOUT = f'{CONCEPT_ROOT}/<split>/<concept_dir>/{{audio,encoded}}/<example_id>.{{wav,npy}}'
# split -> metadata file at the dataset root (the names trainers of this layout read)
METADATA_FILES = {'train': 'metadata_train.json', 'validation': 'metadata_val.json', 'test': 'metadata_test.json'}
# The manifest's names of the two exports.
FRAGMENT_FILES = 'concept-folders'
METADATA = 'concept-metadata'
ENTRIES = 'entries'


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
