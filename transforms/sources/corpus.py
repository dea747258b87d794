"""What the corpus readers (Slakh, MUSDB, MoisesDB, audio folders) share.

Each reader lists every file under its root once, groups the files into songs
(``SongFiles``), spreads the songs over workers and reads each into a SongRef: the
song's metadata is parsed here, its audio is decoded later, once, in LoadStems. A
song's identity is a digest of its metadata file and its files' names (relative to
the song) and sizes, so the same corpus under another root gives the same ids
without reading the audio twice.
"""
import hashlib
from typing import NamedTuple, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from transforms.failures import FAILED, INPUT_ERRORS, InputError, failure
from transforms.sources.archive import is_ignored_member, read_bounded

STAGE = 'read'
METADATA_LIMIT_BYTES = 4 * 2**20


class SongFiles(NamedTuple):
    """One song as listed: where it is, the corpus' split (if any) and its files (path, bytes)."""
    root: str
    path: str
    split: Optional[str]
    files: Tuple[Tuple[str, int], ...]


def norm(path: str) -> str:
    return path.replace('\\', '/')


def list_files(root: str) -> list:
    """Every file under ``root`` (recursively), as sorted (path, size), hidden files left out."""
    found = FileSystems.match([FileSystems.join(root, '**')])[0].metadata_list
    rel = lambda p: norm(p)[len(norm(root)):].lstrip('/')
    return sorted((norm(m.path), m.size_in_bytes) for m in found if not is_ignored_member(rel(m.path)))


def files_under(files, folder: str) -> tuple:
    """The (path, size) entries of ``files`` inside ``folder``."""
    prefix = folder.rstrip('/') + '/'
    return tuple(f for f in files if f[0].startswith(prefix))


def identity(source: str, base: str, files, metadata: bytes = b'') -> str:
    """sha256 of the source name, the metadata bytes and the files' names (relative to ``base``,
    the song's folder) and sizes."""
    digest = hashlib.sha256(source.encode() + b'\0' + hashlib.sha256(metadata).digest())
    for path, size in sorted(files):
        digest.update(f'{path[len(base):].lstrip("/")}\0{size}\0'.encode())
    return digest.hexdigest()


def read_metadata(path: str, files) -> bytes:
    """Reads a song's small metadata file (bounded); InputError when it is not there."""
    if path not in {p for p, _ in files}:
        raise InputError(f'{path}: missing (the song\'s metadata file)')
    return read_bounded(path, METADATA_LIMIT_BYTES)


class ListCorpusFn(beam.DoFn):
    """Input root -> SongFiles of every song under it. Subclasses group the files (``songs``)."""

    def process(self, input_root):
        root = norm(input_root).rstrip('/')
        yield from self.songs(root, list_files(root))

    def songs(self, root: str, files: list):
        raise TypeError(f'{type(self).__name__} must define songs(root, files)')


class ReadCorpusSongFn(beam.DoFn):
    """SongFiles -> SongRef (main) and ``failed``. Subclasses parse one song (``read``), returning
    the SongRef and the (input, error) of files they skipped."""

    def __init__(self):
        self.songs_read = Metrics.counter(self.__class__, 'songs_read')
        self.files_skipped = Metrics.counter(self.__class__, 'files_skipped')

    def process(self, song: SongFiles):
        try:
            ref, skipped = self.read(song)
        except INPUT_ERRORS as e:
            yield failure(STAGE, song.path, e)
            return
        for path, error in skipped:
            self.files_skipped.inc()
            yield failure(STAGE, path, error, ref.song_id if ref else None)
        if ref is not None:
            self.songs_read.inc()
            yield ref

    def read(self, song: SongFiles):
        raise TypeError(f'{type(self).__name__} must define read(song)')


class CorpusSource(beam.PTransform):
    """Lists, spreads and reads a corpus. Outputs ``songs`` (SongRef) and ``failed``.

    Subclasses set LAYOUT (the expected layout, for messages), HAS_SPLITS (whether
    ``--split-from=source`` applies) and FILLABLE (whether songs can take reserve donors), and
    define ``list_fn`` and ``read_fn``.
    """
    LAYOUT = ''
    HAS_SPLITS = False
    FILLABLE = True

    def __init__(self, input_root: str, max_uncompressed_mb: float = 2048):
        super().__init__()
        self.input_root = input_root
        self.limit_bytes = int(max_uncompressed_mb * 2**20)

    @classmethod
    def from_args(cls, args):
        return cls(args.input, args.max_uncompressed_mb)

    def list_fn(self) -> beam.DoFn:
        raise TypeError(f'{type(self).__name__} must define list_fn()')

    def read_fn(self) -> beam.DoFn:
        raise TypeError(f'{type(self).__name__} must define read_fn()')

    def expand(self, pbegin):
        return (pbegin
                | 'InputRoot' >> beam.Create([self.input_root])
                | 'ListSongs' >> beam.ParDo(self.list_fn())
                | 'SpreadSongs' >> beam.Reshuffle()
                | 'ReadSongRefs' >> beam.ParDo(self.read_fn()).with_outputs(FAILED, main='songs'))
