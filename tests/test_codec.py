import numpy as np
import pytest

from transforms.chunk import WindowSpec
from transforms.codec import CODECS, CodecSettings, load_codec
from transforms.encode import codec_handle, encode_segments
from transforms.synth import synth_mix


@pytest.fixture(scope='module')
def codec32():
    return load_codec(CodecSettings(name='encodec_32khz', weights='random', seed=0))


def _encode_windows(codec, audio, chunk_seconds, margin_seconds):
    spec = codec.spec
    window = WindowSpec(chunk_seconds, None, margin_seconds, spec.sample_rate_hz, spec.hop_length, False)
    starts = window.starts(audio.shape[-1])
    handle = codec_handle(codec.settings, 4)
    codes = encode_segments(handle.runtime, window.chunked('s', 'w', audio, range(len(starts)), False).segments)
    return np.concatenate([codes[i][0] for i in range(len(starts))], axis=-1)


@pytest.mark.parametrize('name, codebooks, frames, size', [
    ('encodec_32khz', 4, 64, 2048), ('encodec_24khz', 8, 96, 1024), ('encodec_48khz', 4, 192, 1024)])
def test_registry_models_encode_a_chunk_to_the_documented_shape(name, codebooks, frames, size):
    codec = load_codec(CodecSettings(name=name, weights='random', seed=0))
    spec = CODECS[name]
    assert (spec.codebooks, spec.codebook_size) == (codebooks, size)
    audio = synth_mix(5, 2.0, spec.sample_rate_hz, spec.channels)
    codes = _encode_windows(codec, audio, 1.28, 0.32)
    assert codes.dtype == np.int16 and codes.shape == (codebooks, frames)
    assert codes.min() >= 0 and codes.max() < size
    assert all(len(np.unique(row)) > 5 for row in codes), 'random codebooks must give codes that vary'


def test_codes_depend_on_the_audio(codec32):
    a = codec32.encode(synth_mix(1, 2.0, 32000)[None])[0]
    b = codec32.encode(synth_mix(2, 2.0, 32000)[None])[0]
    assert (a != b).mean() > 0.5


def test_random_weights_are_reproducible_from_the_seed():
    from transformers import EncodecConfig, EncodecModel
    from transforms.codec_calibration import build_random_state_dict, random_state_dict
    settings = CodecSettings(name='encodec_24khz', weights='random', seed=3)
    make = lambda: EncodecModel(EncodecConfig(**settings.spec.config))
    first, second = build_random_state_dict(settings, make), build_random_state_dict(settings, make)
    assert all(np.array_equal(first[k].numpy(), second[k].numpy()) for k in first)
    other = random_state_dict(settings.replace(seed=0), make)     # the session's cached seed 0 (or built)
    assert not np.array_equal(first['quantizer.layers.0.codebook.embed'].numpy(),
                              other['quantizer.layers.0.codebook.embed'].numpy())


def test_pretrained_path_loads_a_local_checkpoint(tmp_path, codec32):
    codec32.model.save_pretrained(str(tmp_path / 'ckpt'))
    local = load_codec(CodecSettings(name='encodec_32khz', weights='pretrained', path=str(tmp_path / 'ckpt')))
    assert local.settings.weights_id == f'pretrained:{tmp_path / "ckpt"}'
    audio = synth_mix(3, 1.0, 32000)[None]
    assert np.array_equal(local.encode(audio)[0], codec32.encode(audio)[0])
    load_codec(CodecSettings(name='encodec_24khz', weights='random', seed=0)).model.save_pretrained(
        str(tmp_path / 'c24'))
    with pytest.raises(ValueError, match='24000 Hz checkpoint'):
        load_codec(CodecSettings(name='encodec_32khz', weights='pretrained', path=str(tmp_path / 'c24')))


def test_settings_are_validated():
    with pytest.raises(ValueError, match='--codec='):
        CodecSettings(name='mp3')
    with pytest.raises(ValueError, match='--codec-weights'):
        CodecSettings(weights='zero')
    with pytest.raises(ValueError, match='serves encodec_24khz'):
        CodecSettings(backend='encodec')


def test_encodec_package_backend_where_it_imports():
    encodec = pytest.importorskip('encodec', reason='the encodec package (and a torchaudio matching torch) '
                                                    'is not installed')
    del encodec
    codec = load_codec(CodecSettings(name='encodec_24khz', weights='random', seed=0, backend='encodec'))
    codes = _encode_windows(codec, synth_mix(5, 2.0, 24000), 1.28, 0.32)
    assert codes.shape == (8, 96) and len(np.unique(codes[0])) > 5
