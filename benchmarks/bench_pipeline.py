"""Throughput of the demo build and of the codec on this machine; edge agreement vs margin.

Run: .venv/bin/python -m benchmarks.bench_pipeline [--out DIR]
Prints figures only; nothing here asserts.
"""
import argparse
import os
import shutil
import tempfile
import time

import numpy as np

from pipelines.build import run
from transforms.chunk import WindowSpec
from transforms.codec import CodecSettings, load_codec
from transforms.encode import codec_handle, encode_segments
from transforms.synth import synth_mix


def bench_demo(out: str) -> None:
    corpus, dataset = os.path.join(out, 'corpus'), os.path.join(out, 'dataset')
    shutil.rmtree(dataset, ignore_errors=True)
    start = time.perf_counter()
    result = run(['--demo', f'--input={corpus}', f'--output={dataset}'])
    wall = time.perf_counter() - start
    windows = result.counters['EncodeChunksFn.windows_encoded']
    seconds = windows * result.manifest['windows']['chunk_samples'] / result.manifest['windows']['sample_rate_hz']
    print(f'demo build: {wall:.1f} s wall, {result.manifest["totals"]["examples"]} examples, '
          f'{windows} windows ({seconds:.0f} s of audio) encoded, {seconds / wall:.2f} audio s per wall s')


def bench_margins(codec) -> None:
    """Edge agreement with a whole-song encode and codec input per window second, by margin and
    span (windows per segment), on a 3-minute generated song."""
    audio = synth_mix(11, 184.32, 32000)
    whole = codec.encode(audio[None])[0][0].astype(np.int16)
    handle = codec_handle(codec.settings)
    for span in (1, 2, 3, 4):
        for margin in (0.1, 0.25, 0.5, 1.0):
            spec = WindowSpec(10.24, None, margin, 32000, 640, False, span)
            n = len(spec.starts(audio.shape[-1]))
            chunked = spec.chunked('s', 'w', audio, range(n), False)
            codes = encode_segments(handle.runtime, chunked.segments)
            windowed = np.concatenate([codes[i][0] for i in range(n)], axis=-1)
            agree = (windowed == whole).all(axis=0).mean()
            ratio = sum(s.audio.shape[-1] for s in chunked.segments) / (n * spec.chunk)
            print(f'span {span} window(s), margin {margin:.2f} s: {agree * 100:.2f} % of frames equal a whole-song '
                  f'encode; codec input {ratio:.3f} s per window second', flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', default=None, help='Work folder (default: a temporary one).')
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix='stemforge-bench-')
    print(f'cores: {os.cpu_count()}')
    bench_demo(out)
    codec = load_codec(CodecSettings(name='encodec_32khz', weights='random', seed=0))
    bench_margins(codec)


if __name__ == '__main__':
    main()
