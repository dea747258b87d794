"""Codec encode speed per batch size and precision, and how many codes bf16/fp16 keep from fp32.

Run: .venv/bin/python -m benchmarks.bench_codec [--device cuda] [--batch-sizes 1,8,32,128]
     [--precisions fp32,bf16] [--weights random|pretrained]
Encodes the same segments (11.24 s: a 10.24 s window with 0.5 s margins, from a synthesized
mix) through the pipeline's own path (encode_segments: batches padded with masks) at each
precision and batch size, and prints the real-time factor (audio seconds per wall second) and,
for each precision other than fp32, the share of codes equal to fp32's for the same input
(all codebooks, and the first). Figures only; nothing asserts.
"""
import argparse
import dataclasses
import time

import numpy as np

from transforms.chunk import WindowSpec
from transforms.codec import CodecSettings, _torch, load_codec, resolve_device
from transforms.encode import encode_segments
from transforms.synth import synth_mix


def segments_for(count: int, rate: int, hop_length: int):
    spec = WindowSpec(10.24, None, 0.5, rate, hop_length, False)
    audio = synth_mix(7, 10.24 * count + 1.0, rate)
    return [spec.segment(audio, i, False) for i in range(count)]


def time_encode(codec, segments, batch_size: int, repeats: int) -> float:
    encode_segments(codec, segments[:batch_size], batch_size)          # warm-up (kernels, allocator)
    start = time.perf_counter()
    for _ in range(repeats):
        encode_segments(codec, segments, batch_size)                   # returns numpy: synchronised
    return (time.perf_counter() - start) / repeats


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N. Default: auto.')
    parser.add_argument('--batch-sizes', default=None,
                        help='Comma-separated. Default: 1,8,32,128 on CUDA, 1,4 on CPU.')
    parser.add_argument('--precisions', default='fp32,bf16', help='Comma-separated. Default: fp32,bf16.')
    parser.add_argument('--weights', default='random', choices=['random', 'pretrained'],
                        help='random (offline) or pretrained (downloads the checkpoint). Default: random.')
    parser.add_argument('--codec', default='encodec_32khz')
    parser.add_argument('--repeats', type=int, default=2, help='Timed passes per figure. Default: 2.')
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch = _torch()
    batches = [int(b) for b in (args.batch_sizes or ('1,8,32,128' if device.startswith('cuda') else '1,4')).split(',')]
    precisions = args.precisions.split(',')
    name = torch.cuda.get_device_name(device) if device.startswith('cuda') else f'CPU, {torch.get_num_threads()} threads'
    print(f'device: {device} ({name}); torch {torch.__version__}; codec {args.codec}, weights {args.weights}')
    codes = {}
    for precision in precisions:
        codec = load_codec(CodecSettings(name=args.codec, weights=args.weights, device=device, precision=precision))
        spec = CodecSettings(name=args.codec).spec
        segments = [dataclasses.replace(s, audio=np.repeat(s.audio, spec.channels, axis=0))
                    for s in segments_for(max(batches), spec.sample_rate_hz, spec.hop_length)]
        seconds = sum(s.audio.shape[-1] for s in segments) / spec.sample_rate_hz
        for batch in batches:
            wall = time_encode(codec, segments, batch, args.repeats)
            print(f'{precision} batch {batch}: {len(segments)} segments, {seconds:.0f} s of audio in {wall:.2f} s: '
                  f'real-time factor {seconds / wall:.1f}x')
        codes[precision] = encode_segments(codec, segments, batches[-1])
        del codec
        if device.startswith('cuda'):
            torch.cuda.empty_cache()
    if 'fp32' in codes:
        for precision, found in codes.items():
            if precision == 'fp32':
                continue
            same = np.concatenate([(found[w][0] == codes['fp32'][w][0]).ravel() for w in found])
            first = np.concatenate([(found[w][0][0] == codes['fp32'][w][0][0]) for w in found])
            print(f'{precision} vs fp32, same input: {same.mean() * 100:.2f} % of codes equal '
                  f'({first.mean() * 100:.2f} % in the first codebook)')


if __name__ == '__main__':
    main()
