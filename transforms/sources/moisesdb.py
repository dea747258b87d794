"""ReadMoisesDb: MoisesDB track folders.

Layout: ``<root>/[<provider>/]<track-uuid>/data.json`` with ``artist``, ``song``, ``genre`` and
``stems: [{stemName, tracks: [{id, extension, trackType, has_bleed}]}]``; audio at
``<track-uuid>/<stemName>/<id>.<extension>``. A stem is the sum of its tracks; its label is the
stemName, its track types are kept as further labels, and ``has_bleed`` (any track's) is kept.
``--skip-bleed`` leaves out the tracks with bleed (a stem left with none is dropped).
"""
import dataclasses
import json
import posixpath

from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.audio_io import is_audio_name
from schemas.ids import stable_id
from schemas.records import SongRef, StemRef
from schemas.taxonomy import classify_source_label, instance_names
from transforms.failures import InputError
from transforms.sources.corpus import (CorpusSource, ListCorpusFn, ReadCorpusSongFn, SongFiles, files_under,
                                       identity, read_metadata)


class MoisesDbOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--skip-bleed', action='store_true', default=False,
                            help='--source=moisesdb: leave out tracks marked has_bleed (a stem left with no '
                                 'track is dropped). Default: off (kept, and marked in the metadata).')


def load_data_json(data: bytes, path: str) -> dict:
    """Parses and checks a track's data.json.

    Raises:
        InputError: not JSON, or not an object with a ``stems`` list.
    """
    try:
        meta = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f'{path}: not valid JSON ({e})') from e
    except RecursionError as e:
        raise InputError(f'{path}: JSON nested too deeply to parse') from e
    if not isinstance(meta, dict) or not isinstance(meta.get('stems'), list):
        raise InputError(f'{path}: expected an object with a "stems" list')
    return meta


class ListMoisesDbFn(ListCorpusFn):
    """Root -> one SongFiles per track folder: a folder with data.json, or one whose stem folders
    hold audio (it then fails for its missing data.json)."""

    def songs(self, root, files):
        tracks = set()
        for path, _ in files:
            folder, base = posixpath.split(path)
            if base == 'data.json':
                tracks.add(folder)
            elif is_audio_name(base) and posixpath.dirname(folder) != root and folder != root:
                tracks.add(posixpath.dirname(folder))
        for track in sorted(tracks):
            if not any(t != track and track.startswith(t + '/') for t in tracks):
                yield SongFiles(root, track, None, files_under(files, track))


class ReadMoisesDbTrackFn(ReadCorpusSongFn):
    """A track folder -> SongRef with one StemRef per stemName (the sum of its tracks)."""

    def __init__(self, skip_bleed: bool):
        super().__init__()
        self.skip_bleed = skip_bleed
        self.tracks_bleed_skipped = Metrics.counter(self.__class__, 'tracks_bleed_skipped')

    def read(self, song: SongFiles):
        meta_path = f'{song.path}/data.json'
        data = read_metadata(meta_path, song.files)
        meta = load_data_json(data, meta_path)
        on_disk = {p for p, _ in song.files}
        stems, used, listed, skipped = [], set(), set(), []
        for entry in sorted((s for s in meta['stems'] if isinstance(s, dict)), key=lambda s: str(s.get('stemName'))):
            stem = self._stem(song.path, entry, on_disk, listed, skipped)
            if stem:
                stems.append(stem)
                used.update(stem.members)
        for path in sorted(on_disk - listed):
            if is_audio_name(path):
                skipped.append((path, InputError(f'{path[len(song.path) + 1:]}: not listed in data.json (skipped)')))
        if not stems:
            raise InputError(f'{song.path}: no stem with audio on disk ({len(meta["stems"])} in data.json)')
        classes = [s.instrument for s in stems]
        stems = [dataclasses.replace(s, instance=inst) for inst, s in zip(instance_names(classes), stems)]
        content = identity('moisesdb', song.path, [f for f in song.files if f[0] in used], data)
        artist = str(meta['artist']).strip() if meta.get('artist') else None
        return SongRef(song_id=stable_id('song', content), artist=artist,
                       title=str(meta.get('song') or posixpath.basename(song.path)), source='moisesdb',
                       input_path=song.path, container='files', content_sha256=content, stems=tuple(stems),
                       skipped_members=tuple(p for p, _ in skipped)), skipped

    def _stem(self, track: str, entry: dict, on_disk: set, listed: set, skipped: list):
        """One stem's StemRef from its tracks on disk (None when none is left); a listed track
        whose file is missing fails the stem (recorded in ``skipped``)."""
        name = str(entry.get('stemName') or 'other')
        tracks = sorted((t for t in entry.get('tracks') or [] if isinstance(t, dict)), key=lambda t: str(t.get('id')))
        listed.update(self._path(track, name, t) for t in tracks)
        if self.skip_bleed:
            self.tracks_bleed_skipped.inc(sum(1 for t in tracks if t.get('has_bleed') is True))
            tracks = [t for t in tracks if t.get('has_bleed') is not True]
        paths = [self._path(track, name, t) for t in tracks]
        missing = [p for p in paths if p not in on_disk]
        if missing or not paths:
            if missing:
                skipped.append((missing[0], InputError(f'{name}: track file {posixpath.basename(missing[0])} listed '
                                                       'in data.json is missing (stem skipped)')))
            return None
        types = tuple(dict.fromkeys(str(t['trackType']) for t in tracks if t.get('trackType')))
        return StemRef(instance=name, instrument=classify_source_label('moisesdb', name, types), member=paths[0],
                       label=name, summed_members=tuple(paths[1:]), source_labels=types,
                       has_bleed=any(t.get('has_bleed') is True for t in tracks))


    @staticmethod
    def _path(track: str, stem_name: str, entry: dict) -> str:
        return f'{track}/{stem_name}/{entry.get("id")}.{entry.get("extension") or "wav"}'


class ReadMoisesDb(CorpusSource):
    """Reads MoisesDB track folders into SongRefs (``songs``) and ``failed``."""
    LAYOUT = '<input>/[<provider>/]<track-uuid>/{data.json, <stemName>/<track id>.wav}'

    def __init__(self, input_root: str, max_uncompressed_mb: float = 2048, skip_bleed: bool = False):
        super().__init__(input_root, max_uncompressed_mb)
        self.skip_bleed = skip_bleed

    @classmethod
    def from_args(cls, args):
        return cls(args.input, args.max_uncompressed_mb, args.skip_bleed)

    def list_fn(self):
        return ListMoisesDbFn()

    def read_fn(self):
        return ReadMoisesDbTrackFn(self.skip_bleed)
