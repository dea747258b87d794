"""ReadSlakh: Slakh2100 (``slakh2100_flac_redux``, the original release) and BabySlakh.

Layout: ``<root>[/train|validation|test|omitted]/TrackNNNNN/{mix.flac, stems/SNN.flac,
MIDI/SNN.mid, all_src.mid, metadata.yaml}`` (BabySlakh: no split folders, ``.wav`` at 16 kHz).
What a track holds is decided from the files on disk, not from the metadata's flags
(``audio_rendered`` is false on every BabySlakh stem although the audio is there); paths
are built from the track folder (``audio_dir``/``midi_dir`` may be garbage). A track's
artist is unknown: tracks are grouped by the Lakh MIDI ``UUID``, so two renders of one
MIDI file never straddle splits.
"""
import posixpath

import yaml
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.ids import stable_id
from schemas.records import SongRef, StemRef
from schemas.taxonomy import classify_source_label, gm_family, instance_names
from transforms.failures import InputError
from transforms.sources.corpus import (CorpusSource, ListCorpusFn, ReadCorpusSongFn, SongFiles, files_under,
                                       identity, read_metadata)

SPLIT_FOLDERS = ('train', 'validation', 'test', 'omitted')
STEM_EXTENSIONS = ('.flac', '.wav')
TRACK_FILES = ('metadata.yaml', 'mix.flac', 'mix.wav', 'all_src.mid')


class SlakhOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--include-omitted', action='store_true', default=False,
                            help='--source=slakh: also read the tracks under omitted/ (they go to train '
                                 'with --split-from=source). Default: off.')


def load_metadata(data: bytes, path: str) -> dict:
    """Parses a track's metadata.yaml with the safe loader (no Python tags run).

    Raises:
        InputError: unparsable, unsafe or not a mapping with a ``stems`` mapping.
    """
    try:
        meta = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise InputError(f'{path}: not safe, parsable YAML ({type(e).__name__}: '
                         f'{str(e).splitlines()[0] if str(e) else e})') from e
    except RecursionError as e:
        raise InputError(f'{path}: YAML nested too deeply to parse') from e
    if not isinstance(meta, dict) or not isinstance(meta.get('stems'), dict):
        raise InputError(f'{path}: expected a mapping with a "stems" mapping')
    return meta


def stem_class(info: dict) -> str:
    """The canonical class of a Slakh stem: its inst_class, else its program's family, else its
    program name."""
    if info.get('is_drum') is True:
        return 'drums'
    program = info.get('program_num')
    family = gm_family(program) if isinstance(program, int) and 0 <= program <= 128 else None
    return classify_source_label('slakh', info.get('inst_class'), (family, info.get('midi_program_name')))


class ListSlakhFn(ListCorpusFn):
    """Root -> one SongFiles per track folder (a folder holding metadata.yaml, a mix or stems/)."""

    def __init__(self, include_omitted: bool):
        self.include_omitted = include_omitted
        self.tracks_omitted = Metrics.counter(self.__class__, 'tracks_omitted')

    def songs(self, root, files):
        tracks = set()
        for path, _ in files:
            folder, name = posixpath.split(path)
            if name in TRACK_FILES:
                tracks.add(folder)
            elif posixpath.basename(folder) == 'stems' and posixpath.dirname(folder) != root:
                tracks.add(posixpath.dirname(folder))
        for track in sorted(tracks):
            parent = posixpath.basename(posixpath.dirname(track))
            split = parent if parent in SPLIT_FOLDERS and posixpath.dirname(track) != root else None
            if split == 'omitted' and not self.include_omitted:
                self.tracks_omitted.inc()
                continue
            yield SongFiles(root, track, split, files_under(files, track))


class ReadSlakhTrackFn(ReadCorpusSongFn):
    """A track folder -> SongRef with one StemRef per stem audio file on disk."""

    def __init__(self):
        super().__init__()
        self.stems_not_rendered = Metrics.counter(self.__class__, 'stems_not_rendered')

    def read(self, song: SongFiles):
        meta_path = f'{song.path}/metadata.yaml'
        data = read_metadata(meta_path, song.files)
        meta = load_metadata(data, meta_path)
        audio = {posixpath.splitext(posixpath.basename(p))[0]: (p, size) for p, size in song.files
                 if posixpath.dirname(p) == f'{song.path}/stems' and p.lower().endswith(STEM_EXTENSIONS)}
        self.stems_not_rendered.inc(sum(1 for sid in meta['stems'] if sid not in audio))
        skipped, found = [], []
        for sid in sorted(audio):
            info = meta['stems'].get(sid)
            if not isinstance(info, dict):
                skipped.append((audio[sid][0], InputError(f'{sid}: audio without an entry in metadata.yaml (skipped)')))
                continue
            found.append((sid, info))
        if not found:
            raise InputError(f'{song.path}: no stem audio under stems/ matches metadata.yaml '
                             f'({len(audio)} file(s), {len(meta["stems"])} entries)')
        classes = [stem_class(info) for _, info in found]
        stems = tuple(
            StemRef(instance=inst, instrument=cls, member=audio[sid][0],
                    label=str(info.get('midi_program_name') or info.get('inst_class') or sid),
                    source_labels=tuple(str(x) for x in (info.get('inst_class'),) if x))
            for inst, cls, (sid, info) in zip(instance_names(classes), classes, found))
        used = [audio[sid] for sid, _ in found]
        content = identity('slakh', song.path, used, data)
        uuid = meta.get('UUID')
        return SongRef(song_id=stable_id('song', content), artist=None, title=posixpath.basename(song.path),
                       source='slakh', input_path=song.path, container='files', content_sha256=content,
                       stems=stems, skipped_members=tuple(p for p, _ in skipped), source_split=song.split,
                       group_key=f'lmd:{uuid}' if uuid else None), skipped


class ReadSlakh(CorpusSource):
    """Reads Slakh2100 / BabySlakh track folders into SongRefs (``songs``) and ``failed``."""
    LAYOUT = '<input>[/train|validation|test|omitted]/TrackNNNNN/{metadata.yaml, stems/SNN.flac}'
    HAS_SPLITS = True

    def __init__(self, input_root: str, max_uncompressed_mb: float = 2048, include_omitted: bool = False):
        super().__init__(input_root, max_uncompressed_mb)
        self.include_omitted = include_omitted

    @classmethod
    def from_args(cls, args):
        return cls(args.input, args.max_uncompressed_mb, args.include_omitted)

    def list_fn(self):
        return ListSlakhFn(self.include_omitted)

    def read_fn(self):
        return ReadSlakhTrackFn()
