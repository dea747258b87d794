import os

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.sources.fixtures import make_folders
from transforms.decode import LoadStemsFn
from transforms.failures import FAILED
from transforms.sources.folders import ReadAudioFolders


def test_each_file_is_a_song_labelled_with_its_folder(tmp_path):
    root = str(tmp_path / 'folders')
    expected = make_folders(root)
    fn = LoadStemsFn(sample_rate_hz=32000, channels=1, max_song_seconds=60, limit_bytes=2**30)
    with TestPipeline() as p:
        out = p | ReadAudioFolders(root)
        assert_that(out.songs | beam.Map(lambda s: (s.title, s.artist, s.group.startswith('song:'),
                                                    [(x.instance, x.instrument, x.label) for x in s.stems])),
                    equal_to([(t, None, True, [('mix', 'mix', label)]) for t, label in expected.items()]),
                    label='songs')
        assert_that(out[FAILED] | beam.Map(lambda f: os.path.basename(f.input)), equal_to(['notes.txt']),
                    label='failed')
        loaded = out.songs | beam.ParDo(fn).with_outputs(FAILED, main='songs')   # wav, flac, ogg, mp3, m4a
        assert_that(loaded.songs | beam.Map(lambda s: (s.ref.title, round(s.duration_seconds))),
                    equal_to([(t, 2) for t in expected]), label='decoded')
        assert_that(loaded[FAILED], equal_to([]), label='decode-errors')
