"""ReadStemArchives: ``<input>/<artist>/<song>.zip`` archives and ``<input>/<artist>/<song>/``
folders of per-instrument stems, local or on an object store, into SongRefs."""
import posixpath

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from schemas.ids import stable_id
from schemas.records import SongRef, StemRef
from schemas.taxonomy import classify_stem, instance_names
from transforms.failures import FAILED, INPUT_ERRORS, InputError, failure
from transforms.sources.archive import audio_members, content_key, member_label, open_song
from transforms.sources.corpus import CorpusSource

STAGE = 'read'


def _split_path(input_root: str, path: str):
    """'<root>/<artist>/<song>[.zip]' -> (artist, song title)."""
    rel = path[len(input_root):].strip('/').replace('\\', '/')
    parts = rel.split('/')
    artist = parts[0] if len(parts) >= 2 else None
    title = parts[1] if len(parts) >= 2 else parts[0]
    if title.lower().endswith('.zip'):
        title = title[:-4]
    return artist, title


class ListSongsFn(beam.DoFn):
    """Input root -> (container, path) of every song archive and song folder under it."""

    def process(self, input_root):
        root = input_root.rstrip('/')
        zips = FileSystems.match([f'{root}/*/*.zip', f'{root}/*/*.ZIP'])
        songs = {('zip', m.path) for result in zips for m in result.metadata_list}
        files = FileSystems.match([f'{root}/*/*/*'])[0].metadata_list
        folders = {posixpath.dirname(m.path.replace('\\', '/')) for m in files}
        songs |= {('folder', f) for f in folders}
        for container, path in sorted(songs):
            yield root, container, path


class ReadSongRefFn(beam.DoFn):
    """Opens one song container, hashes its content and names its stems."""

    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        self.songs_read = Metrics.counter(self.__class__, 'songs_read')
        self.members_not_audio = Metrics.counter(self.__class__, 'members_not_audio')

    def process(self, element):
        root, container, path = element
        try:
            yield from self._read(root, container, path)
        except INPUT_ERRORS as e:
            yield failure(STAGE, path, e)

    def _read(self, root, container, path):
        song = open_song(container, path, self.limit_bytes)
        audio, not_audio = audio_members(song.members)
        if not audio:
            raise InputError(f'{path}: no audio files found (members: {len(song.members)})')
        content = content_key(song, audio)
        artist, title = _split_path(root, path)
        audio = sorted(audio, key=lambda m: (member_label(m).lower(), m))   # 'Gtr' before 'Gtr 2'
        labels = [member_label(m) for m in audio]
        instruments = [classify_stem(label) for label in labels]
        stems = tuple(StemRef(instance=inst, instrument=cls, member=m, label=label) for inst, cls, m, label
                      in zip(instance_names(instruments), instruments, audio, labels))
        self.songs_read.inc()
        for member in not_audio:
            self.members_not_audio.inc()
            yield failure(STAGE, f'{path}::{member}' if container == 'zip' else member,
                          InputError(f'{member_label(member)}: not an audio file (skipped)'))
        yield SongRef(song_id=stable_id('song', content), artist=artist, title=title, source='stems',
                      input_path=path, container=container, content_sha256=content, stems=stems,
                      skipped_members=tuple(not_audio))


class ReadStemArchives(CorpusSource):
    """Reads ``<input>/<artist>/<song>.zip`` and ``<input>/<artist>/<song>/`` into SongRefs.

    Outputs a tuple with ``songs`` (SongRef) and ``failed`` (FailedRecord).
    """
    LAYOUT = '<input>/<artist>/<song>.zip or <input>/<artist>/<song>/ folders'
    HAS_SPLITS = False
    FILLABLE = False    # members live inside each song's archive

    def expand(self, pbegin):
        return (pbegin
                | 'InputRoot' >> beam.Create([self.input_root])
                | 'ListSongs' >> beam.ParDo(ListSongsFn())
                | 'SpreadSongs' >> beam.Reshuffle()
                | 'ReadSongRefs' >> beam.ParDo(ReadSongRefFn(self.limit_bytes)).with_outputs(FAILED, main='songs'))
