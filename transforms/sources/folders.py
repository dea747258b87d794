"""ReadAudioFolders: ``<root>/<label>/<file>.{wav,flac,ogg,mp3,m4a}``, one song per file.

A song's only stem is the whole mix (class ``mix``), labelled with its folder's name (a
concept, a genre, a style). Files that are not audio are logged and skipped.
"""
import posixpath

from schemas.audio_io import is_audio_name
from schemas.ids import stable_id
from schemas.records import SongRef, StemRef
from schemas.taxonomy import WHOLE_MIX
from transforms.failures import InputError
from transforms.sources.corpus import CorpusSource, ListCorpusFn, ReadCorpusSongFn, SongFiles, identity


class ListAudioFoldersFn(ListCorpusFn):
    """Root -> one SongFiles per file in a label folder (deeper files are not read)."""

    def songs(self, root, files):
        for path, size in files:
            if posixpath.dirname(posixpath.dirname(path)) == root:
                yield SongFiles(root, path, None, ((path, size),))


class ReadAudioFileFn(ReadCorpusSongFn):
    """An audio file -> SongRef whose one stem is the file, labelled with its folder's name."""

    def read(self, song: SongFiles):
        folder, base = posixpath.split(song.path)
        if not is_audio_name(base):
            return None, [(song.path, InputError(f'{base}: not an audio file (skipped)'))]
        label = posixpath.basename(folder)
        content = identity('folders', posixpath.dirname(folder), song.files)
        stem = StemRef(instance=WHOLE_MIX, instrument=WHOLE_MIX, member=song.path, label=label)
        return SongRef(song_id=stable_id('song', content), artist=None, title=posixpath.splitext(base)[0],
                       source='folders', input_path=song.path, container='files', content_sha256=content,
                       stems=(stem,)), []


class ReadAudioFolders(CorpusSource):
    """Reads folders of audio files into one-stem SongRefs (``songs``) and ``failed``."""
    LAYOUT = '<input>/<label>/<file>.{wav,flac,ogg,mp3,m4a}'
    FILLABLE = False

    def list_fn(self):
        return ListAudioFoldersFn()

    def read_fn(self):
        return ReadAudioFileFn()
