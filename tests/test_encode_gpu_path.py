"""The CUDA encode path, run on the CPU: padded batches with masks, autocast precisions,
device resolution. Only the device itself is not exercised here."""
import numpy as np
import pytest

from transforms.chunk import WindowSpec
from transforms.codec import CodecSettings, load_codec, resolve_device
from transforms.encode import encode_segments
from transforms.synth import synth_mix


@pytest.fixture(scope='module')
def song():
    return synth_mix(21, 6.0, 32000)


def _segments(audio):
    spec = WindowSpec(1.28, None, 0.32, 32000, 640, True)
    return [spec.segment(audio, i, False) for i in range(len(spec.starts(audio.shape[-1])))]


def test_padded_batches_match_one_by_one(song):
    codec = load_codec(CodecSettings(weights='random', seed=0))
    segments = _segments(song)
    assert len({s.audio.shape[-1] for s in segments}) >= 2       # edge windows are shorter
    single = encode_segments(codec, segments, 1)
    batched = encode_segments(codec, segments, 4)                # pads to the longest, with a mask
    agree = np.mean([(single[w][0] == batched[w][0]).all(axis=0).mean() for w in single])
    assert agree >= 0.99, agree
    assert all(single[w][0].shape == batched[w][0].shape == (4, 64) for w in single)


def test_autocast_precision_gives_valid_codes(song):
    # fp16 takes the same autocast path; on CPU it is only slow, so bf16 stands for both here.
    fp32 = load_codec(CodecSettings(weights='random', seed=0))
    low = load_codec(CodecSettings(weights='random', seed=0, precision='bf16'))
    assert low.autocast() is not None and fp32.autocast() is not None
    x = song[None, :, :32000 * 2]
    a, b = fp32.encode(x)[0], low.encode(x)[0]
    assert a.shape == b.shape and b.min() >= 0 and b.max() < 2048
    assert (a[:, 0] == b[:, 0]).mean() > 0.5      # the first codebook mostly agrees


def test_device_resolution(monkeypatch):
    import torch
    assert resolve_device('cpu') == 'cpu'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert resolve_device('auto') == 'cpu'
    with pytest.raises(ValueError, match='no CUDA device'):
        resolve_device('cuda')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert resolve_device('auto') == 'cuda' and resolve_device('cuda:1') == 'cuda:1'
    with pytest.raises(ValueError, match='--codec-precision'):
        CodecSettings(precision='int8')
