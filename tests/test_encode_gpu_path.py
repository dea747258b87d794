"""The CUDA encode path, run on the CPU: the torch runtime's batched forward (as on CUDA, one
pass per batch), autocast precisions, device resolution. Only the device itself is not
exercised here."""
import numpy as np
import pytest

from transforms.chunk import WindowSpec
from transforms.codec import CodecSettings, load_codec, resolve_device
from transforms.codec_runtime import TorchRuntime
from transforms.encode import encode_batch
from transforms.synth import synth_mix


@pytest.fixture(scope='module')
def segments():
    audio = synth_mix(21, 6.0, 32000)
    spec = WindowSpec(1.28, None, 0.32, 32000, 640, True)
    found = spec.chunked('s', 'w', audio, range(len(spec.starts(audio.shape[-1]))), False).segments
    return [s for s in found if s.audio.shape[-1] == spec.segment_samples(1)]


def test_one_pass_batches_match_one_by_one(segments):
    codec = load_codec(CodecSettings(weights='random', seed=0, runtime='torch'))
    single = [encode_batch(TorchRuntime(codec, 1, 1), [s])[0] for s in segments[:4]]
    batched = TorchRuntime(codec, 4, 1)
    batched.one_by_one = False                            # the CUDA path: the whole batch in one forward
    found = encode_batch(batched, segments[:4])
    agree = np.mean([(a[w][0] == b[w][0]).all(axis=0).mean() for a, b in zip(single, found) for w in a])
    assert agree >= 0.99, agree
    assert all(f[w][0].shape == (4, 64) for f in found for w in f)


def test_autocast_precision_gives_valid_codes(segments):
    # fp16 takes the same autocast path; on CPU it is only slow, so bf16 stands for both here.
    fp32 = load_codec(CodecSettings(weights='random', seed=0))
    low = load_codec(CodecSettings(weights='random', seed=0, precision='bf16'))
    assert low.autocast() is not None and fp32.autocast() is not None
    a = encode_batch(TorchRuntime(fp32, 1, 1), segments[:1])[0]
    b = encode_batch(TorchRuntime(low, 1, 1), segments[:1])[0]
    for w in a:
        assert a[w][0].shape == b[w][0].shape and b[w][0].min() >= 0 and b[w][0].max() < 2048
        assert (a[w][0][0] == b[w][0][0]).mean() > 0.5      # the first codebook mostly agrees


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
