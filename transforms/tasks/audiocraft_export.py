"""``--export=audiocraft``: the dataset as audiocraft (MusicGen fine-tuning) reads it.

For every example, its audio as a FLAC file ``audiocraft/<split>/<example id>.flac`` (the target
stem's window for continuation, built with ``--write-audio``; the fragment for the concept
task) and, beside it with the same name, the ``.json`` audiocraft's ``MusicDataset`` reads as
``MusicInfo`` (title, artist, description, instrument, name; bpm and key are left out: no source
gives them). One manifest per split, ``egs/<split>/data.jsonl``, holds audiocraft's ``AudioMeta``
lines (path, duration, sample_rate, amplitude, weight, info_path), sorted by path. Paths are
relative to the dataset root: run audiocraft from there (its dataset configs point
``datasource.train`` and the others at ``egs/<split>``). The FLAC bytes are the ones the shards
hold, written as they are.
"""
import io
import json

import apache_beam as beam
import numpy as np
import soundfile as sf
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from schemas.manifest import ExportedFile
from schemas.shards import join, write_atomic

AUDIOCRAFT = 'audiocraft'
AUDIO_FILES = 'audiocraft-audio'
EGS = 'audiocraft-egs'
LINES = 'lines'
SPLITS = ('train', 'validation', 'test')
AUDIOCRAFT_FOLDERS = ('audiocraft', 'egs')     # what the export writes under the dataset root


def parse_audiocraft_export(values, task: str) -> bool:
    """Whether ``--export`` (repeatable, comma-separated) asks for audiocraft, the one export of
    ``task`` (continuation, concept).

    Raises:
        ValueError: another export.
    """
    wanted = {v.strip().lower() for value in values or () for v in value.split(',') if v.strip()}
    if wanted - {AUDIOCRAFT}:
        raise ValueError(f'--export: {sorted(wanted - {AUDIOCRAFT})} not for --task={task}; it exports '
                         f'{AUDIOCRAFT} (folders and spleeter-csv are --task=separation\'s)')
    return AUDIOCRAFT in wanted


def _names(stems) -> str:
    stems = [s.split('#')[0].replace('_', ' ') for s in stems]
    return stems[0] if len(stems) == 1 else ', '.join(stems[:-1]) + ' and ' + stems[-1]


def continuation_item(example):
    """(split, example id, FLAC bytes, MusicInfo fields) of a continuation example: the target."""
    meta = example.meta
    if example.target_flac is None:
        raise ValueError('--export=audiocraft with --task=continuation needs --write-audio (the audio to list)')
    context = f' over {_names(meta.context_stems)}' if meta.context_stems else ' alone'
    return meta.split, meta.example_id, example.target_flac, {
        'title': meta.title, 'artist': meta.artist, 'instrument': meta.target_instrument,
        'description': f'{meta.target_instrument} part{context}', 'name': meta.example_id}


def concept_item(fragment):
    """(split, example id, FLAC bytes, MusicInfo fields) of a concept fragment."""
    meta = fragment.meta
    return meta.split, meta.example_id, fragment.audio_flac, {
        'title': meta.title, 'artist': meta.artist, 'instrument': meta.instrument,
        'description': f'{meta.concept} solo' if meta.concept == meta.instrument else f'{meta.concept} ({meta.instrument})',
        'name': meta.example_id}


class WriteAudiocraftFilesFn(beam.DoFn):
    """A record -> ExportedFiles of its .flac and .json, and (split, AudioMeta line) on ``lines``."""

    def __init__(self, root: str, item):
        self.root, self.item = root, item
        self.files_written = Metrics.counter(self.__class__, 'files_written')

    def process(self, record):
        split, example_id, flac, info = self.item(record)
        audio, rate = sf.read(io.BytesIO(flac), dtype='float32', always_2d=True)
        audio_path = f'{AUDIOCRAFT}/{split}/{example_id}.flac'
        info_path = f'{AUDIOCRAFT}/{split}/{example_id}.json'
        info = {k: v for k, v in info.items() if v is not None}
        for relative, data in ((audio_path, flac), (info_path, (json.dumps(info, sort_keys=True) + '\n').encode())):
            size, sha256 = write_atomic(join(self.root, relative), data)
            self.files_written.inc()
            yield ExportedFile(export=AUDIO_FILES, path=relative, bytes=size, sha256=sha256)
        line = {'path': audio_path, 'duration': round(audio.shape[0] / rate, 6), 'sample_rate': int(rate),
                'amplitude': round(float(np.max(np.abs(audio))), 6) if audio.size else 0.0, 'weight': None,
                'info_path': None}
        yield pvalue.TaggedOutput(LINES, (split, line))


def write_egs(lines, root: str):
    """Writes ``egs/<split>/data.jsonl`` of every split (empty when it has no example)."""
    by_split = {split: [] for split in SPLITS}
    for split, line in lines:
        by_split.setdefault(split, []).append(line)
    for split, rows in sorted(by_split.items()):
        relative = f'egs/{split}/data.jsonl'
        data = ''.join(json.dumps(r, sort_keys=True) + '\n' for r in sorted(rows, key=lambda r: r['path']))
        size, sha256 = write_atomic(join(root, relative), data.encode('utf-8'))
        yield ExportedFile(export=EGS, path=relative, bytes=size, sha256=sha256)


class ExportAudiocraft(beam.PTransform):
    """Records -> [ExportedFiles of the audio and info files, ExportedFiles of the egs manifests]."""

    def __init__(self, root: str, item):
        super().__init__()
        self.root, self.item = root, item

    def expand(self, records):
        written = records | 'WriteAudiocraftFiles' >> beam.ParDo(
            WriteAudiocraftFilesFn(self.root, self.item)).with_outputs(LINES, main='files')
        egs = (written[LINES]
               | 'AllLines' >> beam.combiners.ToList()
               | 'WriteEgs' >> beam.FlatMap(write_egs, self.root))
        return [written.files, egs]
