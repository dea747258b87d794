"""The separation task's exports: whole tracks as folders, and Spleeter's training CSVs.

``--export=folders``: MUSDB18-HQ's layout, which the ``musdb`` package reads:
``<out>/folders/{train,test}/<track>/{<target>.wav, ..., mixture.wav}`` (the train and validation
splits' tracks under ``train/``, as MUSDB keeps its validation tracks) and ``<out>/folders/setup.yaml``,
musdb's setup file naming this dataset's sources, stem ids, targets and validation tracks:
``musdb.DB(root='<out>/folders', setup_file='setup.yaml', is_wav=True, subsets='train', split='valid')``.
Each file is 24-bit WAV at the task's rate, written atomically; ``mixture.wav`` is written last,
so a track folder holding it is complete. One song's audio is held at a time.

``--export=spleeter-csv`` (implies folders): ``<out>/spleeter/{train,validation}.csv`` (and
``test.csv`` when the test split has tracks), one row per track with ``mix_path``, one
``<target>_path`` per target and ``duration`` in seconds. Paths are relative to the dataset root,
which is what Spleeter's ``audio_path`` (``spleeter train -d <out>``) is joined to.
"""
import csv
import io
import re

import apache_beam as beam
import yaml
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from schemas.audio_io import encode_pcm24
from schemas.manifest import ExportedFile
from schemas.separation import MIXTURE, SeparatedSong
from schemas.shards import join, write_atomic

FOLDERS = 'folders'
SPLEETER_CSV = 'spleeter-csv'
SPLEETER_DIR = 'spleeter'
EXPORTS = (FOLDERS, SPLEETER_CSV)
TRACKS = 'tracks'
CSV_SPLITS = ('train', 'validation')        # always written (header only when empty); test when it has tracks
MAX_NAME_CHARS = 96
MUSDB_SETUP = 'setup.yaml'
MUSDB_TEST = 'test'         # musdb's subsets: test, and train (which holds the validation tracks)
MUSDB_TRAIN = 'train'
VALIDATION = 'validation'


def parse_exports(values) -> tuple:
    """--export values (repeatable, comma-separated) -> exports in EXPORTS order; spleeter-csv
    brings folders (its rows point at the folder export's WAVs).

    Raises:
        ValueError: an unknown export.
    """
    wanted = {v.strip().lower() for value in values or () for v in value.split(',') if v.strip()}
    unknown = sorted(wanted - set(EXPORTS))
    if unknown:
        raise ValueError(f'--export: unknown export(s) {unknown}; choose from {list(EXPORTS)}')
    if SPLEETER_CSV in wanted:
        wanted.add(FOLDERS)
    return tuple(e for e in EXPORTS if e in wanted)


def track_name(ref) -> str:
    """A track's folder name: 'Artist - Title' (MUSDB's style; the title alone when the artist is
    unknown) in safe characters, then '__' and the song id's first 8 characters, so two songs never
    share a folder. Source names are never joined into paths unchanged."""
    name = f'{ref.artist} - {ref.title}' if ref.artist else str(ref.title)
    name = re.sub(r'[^A-Za-z0-9 ._()&+-]+', '_', name)
    name = re.sub(r'\s+', ' ', name).strip(' ._')[:MAX_NAME_CHARS].rstrip(' ._') or 'track'
    return f'{name}__{ref.song_id[:8]}'


def folder_path(split: str, track: str) -> str:
    """A track's folder, relative to the dataset root: under musdb's subset of its split."""
    return f'{FOLDERS}/{MUSDB_TEST if split == MUSDB_TEST else MUSDB_TRAIN}/{track}'


def musdb_setup(rows, target_names, sample_rate_hz: int) -> bytes:
    """musdb's setup file for the track rows (split, track, row): every target a source (stem id
    1..N in target order, the mixture 0, as musdb reads a track's stems) and a target of itself,
    the validation split's tracks as ``validation_tracks``."""
    setup = {
        'sample_rate': sample_rate_hz,
        'sources': {name: f'{name}.wav' for name in target_names},
        'mixture': f'{MIXTURE}.wav',
        'stem_ids': {MIXTURE: 0, **{name: i for i, name in enumerate(target_names, 1)}},
        'targets': {name: {name: 1} for name in target_names},
        'validation_tracks': sorted(track for split, track, _ in rows if split == VALIDATION),
    }
    return yaml.safe_dump(setup, sort_keys=False).encode('utf-8')


class ExportTrackFn(beam.DoFn):
    """SeparatedSong -> its WAVs written under ``root`` (main: ExportedFile per file; ``tracks``: one
    Spleeter CSV row per track)."""

    def __init__(self, root: str):
        self.root = root
        self.tracks_exported = Metrics.counter(self.__class__, 'tracks_exported')

    def process(self, song: SeparatedSong):
        folder = folder_path(song.split, song.track)
        paths = {}
        for name, audio in song.targets + ((MIXTURE, song.mixture),):    # the mixture last: the folder is complete
            relative = f'{folder}/{name}.wav'
            size, sha = write_atomic(join(self.root, relative), encode_pcm24(audio, song.sample_rate_hz, 'WAV'))
            paths[name] = relative
            yield ExportedFile(export=FOLDERS, path=relative, bytes=size, sha256=sha)
        self.tracks_exported.inc()
        row = {'mix_path': paths[MIXTURE], **{f'{name}_path': paths[name] for name, _ in song.targets},
               'duration': round(song.duration_seconds, 6)}
        yield pvalue.TaggedOutput(TRACKS, (song.split, song.track, row))


def spleeter_csvs(rows, target_names) -> dict:
    """{relative path: CSV bytes} for the track rows (split, track, row) of every split."""
    columns = ['mix_path'] + [f'{name}_path' for name in target_names] + ['duration']
    by_split = {split: [] for split in CSV_SPLITS}
    for split, track, row in sorted(rows, key=lambda r: (r[0], r[1])):
        by_split.setdefault(split, []).append(row)
    out = {}
    for split, split_rows in sorted(by_split.items()):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator='\n')
        writer.writeheader()
        writer.writerows(split_rows)
        out[f'{SPLEETER_DIR}/{split}.csv'] = buf.getvalue().encode('utf-8')
    return out


def _write_listings(rows, root, exports, target_names, sample_rate_hz):
    listings = {f'{FOLDERS}/{MUSDB_SETUP}': (FOLDERS, musdb_setup(rows, target_names, sample_rate_hz))}
    if SPLEETER_CSV in exports:
        listings.update((path, (SPLEETER_CSV, data)) for path, data in spleeter_csvs(rows, target_names).items())
    for relative, (export, data) in sorted(listings.items()):
        size, sha = write_atomic(join(root, relative), data)
        yield ExportedFile(export=export, path=relative, bytes=size, sha256=sha)


class ExportTracks(beam.PTransform):
    """SeparatedSong -> ExportedFile of every file the exports wrote (the manifest lists them)."""

    def __init__(self, root: str, exports: tuple, target_names: tuple, sample_rate_hz: int):
        super().__init__()
        self.root = root
        self.exports = exports
        self.target_names = tuple(target_names)
        self.sample_rate_hz = sample_rate_hz

    def expand(self, songs):
        written = songs | 'WriteTrackFolders' >> beam.ParDo(ExportTrackFn(self.root)).with_outputs(
            TRACKS, main='files')
        listings = (written[TRACKS]
                    | 'AllTracks' >> beam.combiners.ToList()      # small rows: paths and a duration
                    | 'WriteListings' >> beam.FlatMap(_write_listings, self.root, self.exports, self.target_names,
                                                      self.sample_rate_hz))
        return (written.files, listings) | 'ExportedFiles' >> beam.Flatten()
