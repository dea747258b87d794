import io
import os
import shutil
import zipfile

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.corpus import song_stems, tree_fingerprint, write_song, write_zip
from transforms.failures import FAILED
from transforms.sources.stems import ReadStemArchives


def test_zip_at_root_under_folder_and_unzipped_folder_read_alike(tmp_path):
    root = str(tmp_path / 'in')
    write_zip(os.path.join(root, 'A', 'one.zip'), dict(song_stems(1, 0.5), **{'Guitar 2.wav': song_stems(2, 0.5)['Guitar.wav']}))
    write_song(root, 'A', 'two', 3, seconds=0.5)                   # stems under one song folder
    write_song(root, 'B', 'three', 4, seconds=0.5, as_folder=True)  # already unzipped
    before = tree_fingerprint(root)
    expected_stems = (('bass', 'Bass'), ('drums', 'Drums'), ('guitar', 'Guitar'), ('piano', 'Keys'))
    with TestPipeline() as p:
        out = p | ReadStemArchives(root)
        songs = out.songs | beam.Map(lambda s: (s.artist, s.title, s.container,
                                                tuple(sorted((x.instance, x.label) for x in s.stems))))
        assert_that(songs, equal_to([
            ('A', 'one', 'zip', tuple(sorted(expected_stems + (('guitar#2', 'Guitar 2'),)))),
            ('A', 'two', 'zip', expected_stems),
            ('B', 'three', 'folder', expected_stems)]), label='songs')
        assert_that(out[FAILED], equal_to([]), label='failed')
    assert tree_fingerprint(root) == before, 'the input was modified'
    assert sorted(os.listdir(root)) == ['A', 'B'], 'something was written next to the input'


def test_song_ids_follow_content(tmp_path):
    root = str(tmp_path / 'in')
    original = write_song(root, 'A', 'one', 1, seconds=0.5)
    os.makedirs(os.path.join(root, 'B'))
    shutil.copy(original, os.path.join(root, 'B', 'copy.zip'))
    write_song(root, 'C', 'other', 2, seconds=0.5)
    with TestPipeline() as p:
        out = p | ReadStemArchives(root)
        counted = (out.songs | beam.Map(lambda s: s.song_id) | beam.combiners.Count.PerElement()
                   | beam.Map(lambda kv: kv[1]))
        assert_that(counted, equal_to([2, 1]), label='ids')   # the copy shares the original's id


def test_bad_archives_fail_alone(tmp_path):
    root = str(tmp_path / 'in')
    write_song(root, 'Good', 'fine', 1, seconds=0.5)
    os.makedirs(os.path.join(root, 'Bad'))
    with open(os.path.join(root, 'Bad', 'truncated.zip'), 'wb') as f:
        f.write(open(write_song(str(tmp_path / 'x'), 'X', 'y', 2, seconds=0.5), 'rb').read()[:300])
    write_zip(os.path.join(root, 'Bad', 'slip.zip'), {'../../evil.wav': song_stems(3, 0.2)['Drums.wav']})
    write_zip(os.path.join(root, 'Bad', 'huge.zip'), {'Drums.wav': b'\0' * (3 * 2**20)})
    write_zip(os.path.join(root, 'Bad', 'empty.zip'), {'readme.md': b'hello'})
    with TestPipeline() as p:
        out = p | ReadStemArchives(root, max_uncompressed_mb=2)
        assert_that(out.songs | beam.Map(lambda s: s.title), equal_to(['fine']), label='songs')
        failed = out[FAILED] | beam.Map(lambda f: (f.stage, os.path.basename(f.input.split('::')[0]),
                                                  f.error_type))
        assert_that(failed, equal_to([
            ('read', 'truncated.zip', 'InputError'), ('read', 'slip.zip', 'InputError'),
            ('read', 'huge.zip', 'InputError'), ('read', 'empty.zip', 'InputError')]), label='failed')


def test_messages_name_the_file_and_problem(tmp_path):
    from transforms.sources.archive import ZipSong
    from transforms.failures import InputError
    import pytest
    path = write_zip(str(tmp_path / 'a' / 's.zip'), {'/abs/drums.wav': b'x'})
    with pytest.raises(InputError, match=r's\.zip: member .*escapes the archive root'):
        ZipSong(path, 2**20)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr('drums.wav', b'\0' * (2 * 2**20))
    with pytest.raises(InputError, match='over the limit'):
        ZipSong('bomb.zip', 2**20, data=buf.getvalue())
