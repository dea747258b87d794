import os

import apache_beam as beam
import numpy as np
import soundfile as sf
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.sources.fixtures import make_moisesdb
from transforms.decode import LoadStemsFn
from transforms.failures import FAILED
from transforms.sources.moisesdb import ReadMoisesDb


def _stems(song):
    return tuple((s.instance, s.label, s.source_labels, len(s.members), s.has_bleed) for s in song.stems)


def test_tracks_stems_bleed_and_quirks(tmp_path):
    root = str(tmp_path / 'moises')
    make_moisesdb(root)
    with TestPipeline() as p:
        out = p | ReadMoisesDb(root)
        assert_that(out.songs | beam.Map(lambda s: (s.artist, s.title, s.group, _stems(s))), equal_to([
            ('Cy Twombly Band', 'Paper', 'artist:cy twombly band', (
                ('bass', 'bass', ('bass_guitar',), 1, False),
                ('drums', 'drums', ('kick_drum', 'snare_drum'), 2, False),
                ('guitar', 'guitar', ('clean_electric_guitar', 'distorted_electric_guitar'), 2, True),
                ('piano', 'other_keys', ('synth_pad',), 1, False))),
            # piano's second track is missing on disk: that stem is skipped, the song goes on.
            ('Di Project', 'Stone', 'artist:di project', (
                ('bass', 'bass', ('bass_synthesizer',), 1, False),
                ('drums', 'drums', ('full_acoustic_drumkit',), 1, False),
                ('vocals', 'vocals', ('lead_female_singer',), 1, True)))]), label='songs')
        assert_that(out[FAILED] | beam.Map(lambda f: (os.path.relpath(f.input, root), f.message.split(':')[-1].strip())),
                    equal_to([('2c3d-uuid-two/piano/u-gone.wav', 'track file u-gone.wav listed in data.json is '
                                                                  'missing (stem skipped)'),
                              ('2c3d-uuid-two/wind/stray.wav', 'not listed in data.json (skipped)'),
                              ('4e5f-uuid-nojson', "missing (the song's metadata file)"),
                              ('6a7b-uuid-badjson', 'line 1 column 12 (char 11))')]), label='failed')


def test_skip_bleed_drops_bled_tracks(tmp_path):
    root = str(tmp_path / 'moises')
    make_moisesdb(root)
    with TestPipeline() as p:
        out = p | ReadMoisesDb(root, skip_bleed=True)
        assert_that(out.songs | beam.Map(lambda s: (s.title, _stems(s))), equal_to([
            ('Paper', (('bass', 'bass', ('bass_guitar',), 1, False),
                       ('drums', 'drums', ('kick_drum', 'snare_drum'), 2, False),
                       ('guitar', 'guitar', ('clean_electric_guitar',), 1, False),
                       ('piano', 'other_keys', ('synth_pad',), 1, False))),
            ('Stone', (('bass', 'bass', ('bass_synthesizer',), 1, False),
                       ('drums', 'drums', ('full_acoustic_drumkit',), 1, False)))]), label='songs')


def test_a_stem_is_the_sum_of_its_tracks(tmp_path):
    root = str(tmp_path / 'moises')
    make_moisesdb(root)
    track = f'{root}/0a1b-uuid-one/drums'
    expected = sf.read(f'{track}/t-kick.wav', dtype='float32')[0] + sf.read(f'{track}/t-snare.wav', dtype='float32')[0]
    fn = LoadStemsFn(sample_rate_hz=44100, channels=2, max_song_seconds=60, limit_bytes=2**30)
    with TestPipeline() as p:
        out = (p | ReadMoisesDb(root)).songs | beam.ParDo(fn).with_outputs(FAILED, main="songs")
        assert_that(out.songs | beam.Filter(lambda s: s.ref.title == 'Paper')
                    | beam.Map(lambda s: bool(np.allclose(s.audio['drums'], expected.T, atol=1e-6))),
                    equal_to([True]), label='summed')
