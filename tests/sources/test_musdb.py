import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.audio_io import AudioDecodeError, decode_stream, decode_streams
from schemas.records import artist_key
from tests.sources.fixtures import make_musdb_hq, make_musdb_stems, musdb_audio
from transforms.decode import LoadStemsFn
from transforms.failures import FAILED
from transforms.sources.musdb import VALIDATION_TRACKS, ReadMusdb, artist_and_title

STEMS = (('bass', 'bass'), ('drums', 'drums'), ('other', 'other'), ('vocals', 'vocals'))
EXPECTED = [('Actions', 'One Minute Smile', 'validation'), ('Ana Lu', 'First Light', 'train'),
            ('Bo Diddly', 'Second', 'test')]


@pytest.fixture(scope='module')
def stem_mp4_root(tmp_path_factory):
    base = tmp_path_factory.mktemp('musdb')
    make_musdb_stems(str(base / 'root'))
    return str(base / 'root')


def test_validation_tracks_and_names():
    assert len(VALIDATION_TRACKS) == 14 and 'Leaf - Summerghost' in VALIDATION_TRACKS
    assert artist_and_title('Johnny Lokke - Promises & Lies') == ('Johnny Lokke', 'Promises & Lies')
    assert artist_and_title('NoSeparator') == (None, 'NoSeparator')


def test_hq_folders_splits_artists_and_stray_files(tmp_path):
    root = str(tmp_path / 'hq')
    make_musdb_hq(root)
    with TestPipeline() as p:
        out = p | ReadMusdb(root)
        assert_that(out.songs | beam.Map(lambda s: (s.artist, s.title, s.source_split, s.group,
                                                    tuple(sorted((x.instance, x.label) for x in s.stems)))),
                    equal_to([(a, t, split, f'artist:{artist_key(a)}', STEMS) for a, t, split in EXPECTED]), label='songs')
        assert_that(out[FAILED] | beam.Map(lambda f: os.path.basename(f.input)),
                    equal_to(['accompaniment.wav']), label='failed')


def test_stem_mp4_streams_are_read_and_decoded(stem_mp4_root):
    fn = LoadStemsFn(sample_rate_hz=44100, channels=2, max_song_seconds=60, limit_bytes=2**30)
    with TestPipeline() as p:
        out = p | ReadMusdb(stem_mp4_root)
        assert_that(out.songs | beam.Map(lambda s: (s.artist, s.title, s.source_split,
                                                    tuple(sorted((x.instance, x.stream) for x in s.stems)))),
                    equal_to([(a, t, split, (('bass', 2), ('drums', 1), ('other', 3), ('vocals', 4)))
                              for a, t, split in EXPECTED]), label='songs')
        loaded = out.songs | beam.ParDo(fn).with_outputs(FAILED, main='songs')
        assert_that(loaded.songs | beam.Map(lambda s: (s.ref.title, sorted(s.audio), s.audio['drums'].shape[0])),
                    equal_to([(t, ['bass', 'drums', 'other', 'vocals'], 2) for _, t, _ in EXPECTED]), label='loaded')
        assert_that(loaded[FAILED], equal_to([]), label='no-errors')


def test_a_stem_mp4_is_demuxed_once_per_song(stem_mp4_root, monkeypatch):
    import transforms.decode as decode
    calls = []

    def counted(data, name, streams, max_seconds):
        calls.append((name, tuple(streams)))
        return decode_streams(data, name, streams, max_seconds)

    monkeypatch.setattr(decode, 'decode_streams', counted)    # the runner works in this process
    fn = LoadStemsFn(sample_rate_hz=44100, channels=2, max_song_seconds=60, limit_bytes=2**30)
    with TestPipeline(runner='DirectRunner') as p:
        loaded = (p | ReadMusdb(stem_mp4_root)).songs | beam.ParDo(fn).with_outputs(FAILED, main='songs')
        assert_that(loaded.songs | beam.Map(lambda s: sorted(s.audio)),
                    equal_to([['bass', 'drums', 'other', 'vocals']] * 3))
    assert sorted(calls) == sorted((f'{a} - {t}.stem.mp4', (1, 2, 3, 4)) for a, t, _ in EXPECTED)


def test_one_bad_stream_loses_only_its_stem(stem_mp4_root):
    path = os.path.join(stem_mp4_root, 'test', 'Bo Diddly - Second.stem.mp4')
    results = decode_streams(open(path, 'rb').read(), 'x.stem.mp4', [1, 7], 60)
    assert results[1][0].shape[0] == 2 and isinstance(results[7], AudioDecodeError)


def test_each_stream_decodes_to_its_own_stem(stem_mp4_root):
    path = os.path.join(stem_mp4_root, 'test', 'Bo Diddly - Second.stem.mp4')
    data = open(path, 'rb').read()
    truth = musdb_audio(40)     # the first song of the sorted fixture (seed 40)
    for index, stem in enumerate(('mixture', 'drums', 'bass', 'other', 'vocals')):
        audio, rate = decode_stream(data, index, 'x.stem.mp4', 60)
        assert rate == 44100 and audio.shape[0] == 2
        ref = truth[stem][:, 0]
        # AAC adds priming samples: compare after aligning by cross-correlation at small lags.
        best = max(np.corrcoef(audio[0, lag:lag + 44100], ref[:44100])[0, 1] for lag in range(0, 4096, 64))
        assert best > 0.9, (stem, best)
    with pytest.raises(AudioDecodeError, match='no audio stream 5'):
        decode_stream(data, 5, 'x.stem.mp4', 60)
    with pytest.raises(AudioDecodeError, match='cannot (open|decode)'):
        decode_stream(data[:2000], 1, 'x.stem.mp4', 60)
