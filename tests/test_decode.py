import tracemalloc
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.audio_io import AudioDecodeError, decode_audio, resample, sum_audio, to_channels
from schemas.records import SongRef, StemRef
from schemas.taxonomy import classify_stem
from tests.corpus import wav_bytes, write_zip
from transforms.decode import LoadStemsFn
from transforms.failures import FAILED

TONE = (0.5 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)).astype(np.float32)


@pytest.mark.parametrize('fmt, subtype', [('WAV', 'PCM_16'), ('FLAC', 'PCM_16'), ('OGG', 'VORBIS'),
                                          ('MP3', 'MPEG_LAYER_III'), ('WAV', 'FLOAT')])
def test_decodes_formats(fmt, subtype):
    audio, rate = decode_audio(wav_bytes(TONE, 44100, fmt, subtype), f'tone.{fmt.lower()}', 60)
    assert rate == 44100 and audio.dtype == np.float32 and audio.shape[0] == 1
    assert abs(audio.shape[1] - 44100) < 3000   # lossy codecs add priming samples
    assert 0.3 < np.abs(audio).max() < 0.7


@pytest.mark.parametrize('data, match', [
    (b'not audio at all, just text', 'not audio|neither'),
    (wav_bytes(np.zeros(0, np.float32)), 'empty'),
    (wav_bytes(np.full(100, np.nan, np.float32), subtype='FLOAT'), 'NaN'),
    (wav_bytes(TONE[:44100]), 'longer than'),
])
def test_rejects_bad_audio_with_its_name(data, match):
    with pytest.raises(AudioDecodeError, match=match) as info:
        decode_audio(data, 'Stem.wav', max_seconds=0.5 if 'longer' in match else 60)
    assert 'Stem.wav' in str(info.value)


def test_channels_and_resampling():
    stereo = np.stack([TONE, -TONE])
    assert np.allclose(to_channels(stereo, 1), 0)
    assert to_channels(TONE[None], 2).shape == (2, 44100)
    assert to_channels(np.ones((6, 10), np.float32), 2).shape == (2, 10)
    out = resample(TONE[None], 44100, 32000)
    assert out.shape == (1, 32000) and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out[0]))
    assert abs(np.argmax(spectrum) - 440) <= 1   # the tone survives at 1 Hz resolution


def _ref(path, members):
    stems = tuple(StemRef(instance=n.split('.')[0].lower(), instrument=classify_stem(n.split('.')[0]), member=n,
                          label=n.split('.')[0]) for n in members)
    return SongRef(song_id='s1', artist='A', title='t', source='stems', input_path=path, container='zip',
                   content_sha256='0', stems=stems)


def test_load_aligns_marks_silence_downmixes_and_fails_bad_stems_alone(tmp_path):
    members = {
        'Drums.wav': wav_bytes(TONE),
        'Bass.wav': wav_bytes(TONE[:22050]),                                # shorter: padded
        'Fx.wav': wav_bytes(np.full(44100, 1e-4, np.float32), subtype='FLOAT'),   # -80 dBFS: silent
        'Keys.wav': wav_bytes(np.stack([TONE] * 4, axis=1)),               # 4 channels: down-mixed
        'Vocals.wav': b'RIFF garbage',
    }
    path = write_zip(str(tmp_path / 'A' / 't.zip'), members)
    fn = LoadStemsFn(sample_rate_hz=32000, channels=1, max_song_seconds=60, limit_bytes=2**30)
    with TestPipeline() as p:
        out = p | beam.Create([_ref(path, members)]) | beam.ParDo(fn).with_outputs(FAILED, main='songs')
        assert_that(out.songs | beam.Map(lambda s: (sorted(s.audio), {k: v.shape for k, v in s.audio.items()}
                                                    ['drums'], s.silent, s.padded_seconds, len(s.notes))),
                    equal_to([(['bass', 'drums', 'fx', 'keys'], (1, 32000), ('fx',), {'bass': 0.5}, 1)]),
                    label='songs')
        assert_that(out[FAILED] | beam.Map(lambda f: (f.stage, os.path.basename(f.input), f.song_id)),
                    equal_to([('decode', 't.zip::Vocals.wav', 's1')]), label='failed')


def test_sum_audio_matches_a_stacked_sum_and_holds_one_buffer():
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((2, n), dtype=np.float32) for n in (48000, 48000, 40000, 48000)]
    stacked = np.sum([np.pad(a, ((0, 0), (0, 48000 - a.shape[-1]))) for a in arrays], axis=0, dtype=np.float32)
    before = [a.copy() for a in arrays]
    tracemalloc.start()
    total = sum_audio(arrays)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total.dtype == np.float32 and total.tobytes() == stacked.tobytes()   # same order, same bits
    assert peak < 1.5 * total.nbytes            # one output buffer, not a stack of every input
    assert all(np.array_equal(a, b) for a, b in zip(arrays, before))
    single = sum_audio(arrays[:1])
    assert not np.shares_memory(single, arrays[0]) and np.array_equal(single, arrays[0])
    assert np.array_equal(sum_audio([], like=arrays[0]), np.zeros_like(arrays[0]))
