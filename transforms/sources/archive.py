"""Reading a song's stems in place, from a zip archive or a folder, local or remote.

Nothing is extracted and nothing in the input is written. Member names are never
joined into output paths; a member whose name escapes the archive root fails the
archive (zip-slip), and decompressed sizes are bounded.
"""
import hashlib
import lzma
import os
import posixpath
import zipfile
import zlib
from io import BytesIO

from apache_beam.io.filesystems import FileSystems

from schemas.audio_io import is_audio_name
from transforms.failures import InputError


def read_bounded(path: str, limit_bytes: int) -> bytes:
    """Reads a whole file through Beam's FileSystems, failing past ``limit_bytes``."""
    with FileSystems.open(path) as handle:
        data = handle.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise InputError(f'{path}: larger than the limit of {limit_bytes / 2**20:.0f} MiB '
                         '(--max-uncompressed-mb)')
    return data


def is_ignored_member(name: str) -> bool:
    """Folders, macOS resource forks and hidden files carry no stems."""
    base = posixpath.basename(name.rstrip('/'))
    return name.endswith('/') or name.startswith('__MACOSX/') or '/__MACOSX/' in name or base.startswith('.')


def check_member_name(archive: str, name: str) -> None:
    """Raises InputError for a member name that escapes the archive root."""
    normalized = name.replace('\\', '/')
    parts = normalized.split('/')
    if normalized.startswith('/') or '..' in parts or (len(parts[0]) == 2 and parts[0][1] == ':'):
        raise InputError(f'{archive}: member {name!r} escapes the archive root (unsafe path)')


class ZipSong:
    """A song archive read in place, member by member, through a seekable Beam file handle
    (never held whole in memory)."""

    def __init__(self, path: str, limit_bytes: int, data: bytes = None):
        self.path = path
        self.limit_bytes = limit_bytes
        self._handle = BytesIO(data) if data is not None else FileSystems.open(path)
        try:
            self._zip = zipfile.ZipFile(self._handle)
        except zipfile.BadZipFile as e:
            raise InputError(f'{path}: not a readable zip archive ({e})') from e
        infos = [i for i in self._zip.infolist() if not i.is_dir()]
        for info in infos:
            check_member_name(path, info.filename)
        total = sum(i.file_size for i in infos if not is_ignored_member(i.filename))
        if total > limit_bytes:
            raise InputError(f'{path}: members decompress to {total / 2**20:.0f} MiB, over the limit of '
                             f'{limit_bytes / 2**20:.0f} MiB (--max-uncompressed-mb)')
        self.members = sorted(i.filename for i in infos)

    def fingerprint(self, member: str) -> tuple:
        """(size, CRC32) of a member, from the archive's directory (nothing decompressed)."""
        info = self._zip.getinfo(member)
        return info.file_size, info.CRC

    def read(self, member: str) -> bytes:
        try:
            with self._zip.open(member) as handle:
                data = handle.read(self.limit_bytes + 1)
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError, NotImplementedError) as e:
            # a damaged stream, or a compression method or its options this zipfile cannot read
            raise InputError(f'{self.path}: member {member!r} cannot be read ({type(e).__name__}: {e})') from e
        except RuntimeError as e:  # encrypted members
            raise InputError(f'{self.path}: member {member!r} cannot be read ({e})') from e
        if len(data) > self.limit_bytes:
            raise InputError(f'{self.path}: member {member!r} decompresses beyond the limit of '
                             f'{self.limit_bytes / 2**20:.0f} MiB (--max-uncompressed-mb)')
        return data


class FolderSong:
    """An unzipped song folder: its files are the members (full paths)."""

    def __init__(self, path: str, limit_bytes: int):
        self.path = path
        self.limit_bytes = limit_bytes
        found = FileSystems.match([FileSystems.join(path, '*')])[0].metadata_list
        self.members = sorted(m.path for m in found)
        total = sum(m.size_in_bytes for m in found if not is_ignored_member(m.path))
        if total > limit_bytes:
            raise InputError(f'{path}: files add up to {total / 2**20:.0f} MiB, over the limit of '
                             f'{limit_bytes / 2**20:.0f} MiB (--max-uncompressed-mb)')

    def read(self, member: str) -> bytes:
        return read_bounded(member, self.limit_bytes)

    def fingerprint(self, member: str) -> tuple:
        """(size, CRC32) of a file, as a zip's directory would hold them."""
        data = self.read(member)
        return len(data), zlib.crc32(data)


class FileSet:
    """A song whose members are files named by their full paths, wherever they are (the corpus
    layouts: Slakh's stems/ folder, a MUSDB .stem.mp4, MoisesDB's per-stem folders). Nothing is
    listed; each member is read bounded."""

    def __init__(self, path: str, limit_bytes: int):
        self.path = path
        self.limit_bytes = limit_bytes
        self.members = []

    def read(self, member: str) -> bytes:
        return read_bounded(member, self.limit_bytes)


CONTAINERS = {'zip': ZipSong, 'folder': FolderSong, 'files': FileSet}


def open_song(container: str, path: str, limit_bytes: int):
    """Opens a song's container: 'zip' (an archive), 'folder' (its files) or 'files' (members by path)."""
    if container not in CONTAINERS:
        raise ValueError(f'unknown song container {container!r}; known: {sorted(CONTAINERS)}')
    return CONTAINERS[container](path, limit_bytes)


def member_label(member: str) -> str:
    """The stem's own name: its file name without folders or extension."""
    return os.path.splitext(posixpath.basename(member.replace('\\', '/')))[0]


def content_key(song, audio) -> str:
    """What makes two copies the same song: sha256 over each audio member's name (without
    folders or extension), size and CRC32, sorted. A re-exported zip (new timestamps,
    compression, top folder or non-audio files), the same stems unzipped into a folder, or a
    zip of that folder all get the same key; any changed audio byte gives another."""
    entries = sorted((member_label(m), *song.fingerprint(m)) for m in audio)
    digest = hashlib.sha256()
    for label, size, crc in entries:
        digest.update(f'{label}\0{size}\0{crc:08x}\n'.encode('utf-8'))
    return digest.hexdigest()


def audio_members(members):
    """Splits members into (audio files, non-audio files), ignoring folders and hidden files."""
    kept = [m for m in members if not is_ignored_member(m)]
    return [m for m in kept if is_audio_name(m)], [m for m in kept if not is_audio_name(m)]
