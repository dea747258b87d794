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


def _coded(codec: str, container_format: str) -> bytes:
    from schemas import av_audio
    stereo = np.stack([TONE, 0.5 * TONE])
    rate = av_audio.codec_rate(codec, 44100)
    return av_audio.encode([resample(stereo, 44100, rate)], rate, codec, 128, container_format)


@pytest.mark.parametrize('codec, container_format, name', [
    ('aac', 'mp4', 'tone.m4a'), ('alac', 'mp4', 'lossless.m4a'), ('libopus', 'ogg', 'voice.opus'),
    ('libopus', 'webm', 'clip.webm.opus'), ('wmav2', 'asf', 'old.wma')])
def test_decodes_what_libsndfile_cannot_in_process(codec, container_format, name, monkeypatch):
    monkeypatch.setenv('PATH', '')    # no ffmpeg program is needed
    audio, rate = decode_audio(_coded(codec, container_format), name, 60)
    assert audio.dtype == np.float32 and audio.shape[0] == 2
    assert abs(audio.shape[1] / rate - 1.0) < 0.08
    left, right = np.sqrt(np.mean(np.square(audio[:, rate // 4:-rate // 4]), axis=1))   # a 0.5 sine: 0.354
    assert left == pytest.approx(0.354, rel=0.1) and right == pytest.approx(left / 2, rel=0.1)


def test_truncated_and_over_long_coded_audio_are_errors_naming_the_file():
    data = _coded('aac', 'mp4')
    with pytest.raises(AudioDecodeError, match='neither libsndfile .* nor FFmpeg') as info:
        decode_audio(data[:len(data) // 3], 'cut.m4a', 60)
    assert 'cut.m4a' in str(info.value)
    with pytest.raises(AudioDecodeError, match='cut.m4a: .*longer than the limit of 0.5 s'):
        decode_audio(data, 'cut.m4a', 0.5)


def test_header_bounds_are_checked_before_decoding():
    with pytest.raises(AudioDecodeError, match='Many.wav: declares 80 channels'):
        decode_audio(wav_bytes(np.zeros((10, 80), np.float32)), 'Many.wav', 60)
    with pytest.raises(AudioDecodeError, match='Long.wav: 2.0 s is longer than the limit of 1 s'):
        decode_audio(wav_bytes(np.zeros(2 * 44100, np.float32)), 'Long.wav', 1)


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


def test_surround_stems_are_down_mixed_with_itu_weights():
    def only(channels, index):
        audio = np.zeros((channels, 44100), np.float32)
        audio[index] = TONE
        return to_channels(audio, 2)
    centre, lfe, left_surround = only(6, 2), only(6, 3), only(6, 4)
    assert np.allclose(centre[0], centre[1]) and np.abs(centre).max() > 0.1    # centre: both sides, equally
    assert np.abs(lfe).max() == 0                                             # LFE dropped
    assert np.abs(left_surround[1]).max() == 0 and np.abs(left_surround[0]).max() > 0.1
    front_left = only(8, 0)
    assert np.abs(front_left[1]).max() == 0 and np.abs(only(8, 7)[0]).max() == 0   # 7.1: right side stays right
    # Full scale on every channel stays within full scale; the sides keep their balance.
    loud = to_channels(np.ones((6, 10), np.float32), 2)
    assert np.allclose(loud, 1.0, atol=1e-6)
    assert np.allclose(to_channels(np.ones((6, 10), np.float32), 1), 1.0, atol=1e-6)


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
