"""What counts as the same song: a song's id follows its stems, not the archive's bytes."""
import os
import zipfile

from tests.corpus import song_stems, write_zip
from transforms.sources.stems import ReadSongRefFn

LIMIT = 1 << 30


def song_id(root: str, container: str, path: str) -> str:
    refs = [r for r in ReadSongRefFn(LIMIT).process((root, container, path)) if hasattr(r, 'song_id')]
    assert len(refs) == 1, refs
    return refs[0].song_id


def test_reexported_unzipped_and_rezipped_copies_share_an_id(tmp_path):
    root = str(tmp_path)
    stems = song_stems(5, seconds=1.0)
    original = write_zip(f'{root}/Ada/Song.zip', stems, folder='Song')
    # A re-export: other timestamps, stored instead of deflated, another top folder, a readme.
    again = f'{root}/Ada/Song (final).zip'
    with zipfile.ZipFile(again, 'w', compression=zipfile.ZIP_STORED) as archive:
        for name, data in reversed(list(stems.items())):
            info = zipfile.ZipInfo(f'Song export 2/{name}', date_time=(2024, 6, 1, 12, 30, 0))
            archive.writestr(info, data)
        archive.writestr('Song export 2/notes.txt', b'mixed at home')
    folder = f'{root}/Bo/Song'
    os.makedirs(folder)
    for name, data in stems.items():
        with open(f'{folder}/{name}', 'wb') as f:
            f.write(data)
    with open(original, 'rb') as f, open(again, 'rb') as g:
        assert f.read() != g.read()
    ids = {song_id(root, 'zip', original), song_id(root, 'zip', again), song_id(root, 'folder', folder)}
    assert len(ids) == 1


def test_a_changed_stem_or_a_renamed_stem_is_another_song(tmp_path):
    root = str(tmp_path)
    stems = song_stems(5, seconds=1.0)
    base = song_id(root, 'zip', write_zip(f'{root}/A/a.zip', stems))
    changed = dict(stems)
    data = bytearray(changed['Bass.wav'])
    data[-1] ^= 1                                     # one audio byte
    changed['Bass.wav'] = bytes(data)
    renamed = {('Synth.wav' if k == 'Keys.wav' else k): v for k, v in stems.items()}
    other = {song_id(root, 'zip', write_zip(f'{root}/A/b.zip', changed)),
             song_id(root, 'zip', write_zip(f'{root}/A/c.zip', renamed))}
    assert base not in other and len(other) == 2
