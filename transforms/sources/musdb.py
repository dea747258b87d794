"""ReadMusdb: MUSDB18 (``.stem.mp4``) and MUSDB18-HQ (wav folders).

MUSDB18-HQ: ``<root>/{train,test}/<Artist - Title>/{mixture,drums,bass,other,vocals}.wav``.
MUSDB18: ``<root>/{train,test}/<Artist - Title>.stem.mp4``, five stereo AAC streams in the
order mixture, drums, bass, other, vocals; a song's file is demuxed once (PyAV, in process) for its four stems.
The mixture is not a stem. The artist is the part of the name before `` - ``. With
``--split-from=source``, ``train`` and ``test`` are kept and the 14 validation tracks of
the musdb package's configuration go to validation.
"""
import posixpath

from schemas.ids import stable_id
from schemas.records import SongRef, StemRef
from schemas.taxonomy import classify_source_label
from transforms.failures import InputError
from transforms.sources.corpus import CorpusSource, ListCorpusFn, ReadCorpusSongFn, SongFiles, identity

STEMS = ('drums', 'bass', 'other', 'vocals')
STREAMS = ('mixture',) + STEMS           # the audio streams of a .stem.mp4, in order
MIXTURE = 'mixture'
SPLIT_FOLDERS = ('train', 'test')
# The validation tracks of the musdb package (musdb/configs/mus.yaml), all from train.
VALIDATION_TRACKS = frozenset((
    'Actions - One Minute Smile', 'Clara Berry And Wooldog - Waltz For My Victims',
    'Johnny Lokke - Promises & Lies', 'Patrick Talbot - A Reason To Leave', 'Triviul - Angelsaint',
    'Alexander Ross - Goodbye Bolero', 'Fergessen - Nos Palpitants', 'Leaf - Summerghost',
    'Skelpolu - Human Mistakes', 'Young Griffo - Pennies', 'ANiMAL - Rockshow', 'James May - On The Line',
    'Meaxic - Take A Step', 'Traffic Experiment - Sirens',
))
STEM_MP4 = '.stem.mp4'


def artist_and_title(name: str):
    """'Artist - Title' -> ('Artist', 'Title'); a name without ' - ' has no known artist."""
    artist, sep, title = name.partition(' - ')
    return (artist.strip(), title.strip()) if sep and artist.strip() and title.strip() else (None, name)


def musdb_split(folder: str, name: str):
    """The corpus' split of a track in ``folder``: train, validation (the 14 tracks) or test."""
    if folder not in SPLIT_FOLDERS:
        return None
    return 'validation' if folder == 'train' and name in VALIDATION_TRACKS else folder


class ListMusdbFn(ListCorpusFn):
    """Root -> one SongFiles per ``.stem.mp4`` file and per folder of wav stems."""

    def songs(self, root, files):
        folders = {}
        for path, size in files:
            folder, base = posixpath.split(path)
            if base.lower().endswith(STEM_MP4):
                name = base[:-len(STEM_MP4)]
                yield SongFiles(root, path, musdb_split(posixpath.basename(folder), name), ((path, size),))
            elif base.lower().endswith('.wav') and folder != root:
                folders.setdefault(folder, []).append((path, size))
        for folder, found in sorted(folders.items()):
            parent = posixpath.dirname(folder)
            split = musdb_split(posixpath.basename(parent), posixpath.basename(folder)) if parent != root else None
            yield SongFiles(root, folder, split, tuple(found))


class ReadMusdbSongFn(ReadCorpusSongFn):
    """A .stem.mp4 or a wav folder -> SongRef with the drums, bass, other and vocals stems."""

    def read(self, song: SongFiles):
        if song.path.lower().endswith(STEM_MP4):
            name = posixpath.basename(song.path)[:-len(STEM_MP4)]
            stems = tuple(StemRef(instance=classify_source_label('musdb', label), instrument=classify_source_label(
                'musdb', label), member=song.path, label=label, stream=STREAMS.index(label)) for label in STEMS)
            skipped, base = [], posixpath.dirname(song.path)
        else:
            name, base = posixpath.basename(song.path), song.path
            by_label = {posixpath.splitext(posixpath.basename(p))[0].lower(): p for p, _ in song.files}
            skipped = [(p, InputError(f'{posixpath.basename(p)}: not a MUSDB stem (skipped)'))
                       for label, p in sorted(by_label.items()) if label not in STEMS + (MIXTURE,)]
            stems = tuple(StemRef(instance=classify_source_label('musdb', label),
                                  instrument=classify_source_label('musdb', label), member=by_label[label],
                                  label=label) for label in STEMS if label in by_label)
            if not stems:
                raise InputError(f'{song.path}: none of {", ".join(f"{s}.wav" for s in STEMS)} found')
        content = identity('musdb', base, [f for f in song.files if f[0] not in {p for p, _ in skipped}])
        artist, title = artist_and_title(name)
        return SongRef(song_id=stable_id('song', content), artist=artist, title=title, source='musdb',
                       input_path=song.path, container='files', content_sha256=content, stems=stems,
                       skipped_members=tuple(p for p, _ in skipped), source_split=song.split), skipped


class ReadMusdb(CorpusSource):
    """Reads MUSDB18 .stem.mp4 files and MUSDB18-HQ folders into SongRefs (``songs``) and ``failed``."""
    LAYOUT = '<input>/{train,test}/<Artist - Title>.stem.mp4 or <input>/{train,test}/<Artist - Title>/<stem>.wav'
    HAS_SPLITS = True

    def list_fn(self):
        return ListMusdbFn()

    def read_fn(self):
        return ReadMusdbSongFn()
