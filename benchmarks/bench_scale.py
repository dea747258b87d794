"""Pipeline efficiency, worker speed-up and peak memory on this machine.

Run: .venv/bin/python -m benchmarks.bench_scale [--workers 1,2] [--runner direct|dask] [--parts throughput,memory,long]
Prints, from one run over a fixed generated corpus: codec-only encode throughput (the same
windows and batch size, no Beam), end-to-end build throughput (encoded audio seconds per wall
second), their ratio (pipeline efficiency), per-stage time from the counters, peak RSS, the
speed-up of each worker count over one, and peak RSS for 4 vs 40 songs (and, with --parts
including long, one 10-minute song of 16 stems at 44.1 kHz stereo). Figures only; nothing asserts.
"""
import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import soundfile as sf

from transforms.chunk import WindowSpec
from transforms.codec import CodecSettings
from transforms.codec_options import MARGIN_SECONDS, SPAN_WINDOWS
from transforms.encode import codec_handle, encode_segments
from transforms.synth import synth_stems

FLAGS = ['--codec-weights=random', '--target-stem=guitar', '--assortments=1', '--augmentations=0',
         '--distort-p=0', '--progress-seconds=3600']


def make_corpus(root, songs, seconds, stems_per_song=4, rate=44100, channels=2):
    for i in range(songs):
        stems = synth_stems(500 + i, seconds, rate)
        members = {}
        for k in range(stems_per_song):
            name = list(stems)[k % 4]
            audio = stems[name] * (0.9 ** (k // 4))
            buf = io.BytesIO()
            sf.write(buf, np.repeat(audio[:, None], channels, axis=1), rate, format='WAV', subtype='PCM_16')
            members[f'{name}{"" if k < 4 else k}.wav'] = buf.getvalue()
        path = os.path.join(root, f'artist{i % 7}', f'song{i}.zip')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with zipfile.ZipFile(path, 'w') as archive:
            for name, data in members.items():
                archive.writestr(name, data)


# Runs a command and prints the peak RSS (KiB) of the largest process it waited for.
_MEASURE = ('import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, '
            'stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); '
            'print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)')


def build(corpus, out, extra=()):
    """Runs a build in a fresh child process; returns (wall seconds, peak RSS MiB, counters)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, '-c', _MEASURE, sys.executable, '-m', 'pipelines.build',
                           f'--input={corpus}', f'--output={out}', *FLAGS, *extra],
                          check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    with open(os.path.join(out, 'counters.json')) as f:
        counters = json.load(f)
    return wall, int(done.stdout.split()[-1]) / 1024, counters


def codec_only_seconds_per_second(seconds, windows):
    """Window seconds per wall second of the build's own codec path (the default runtime, span and
    margins), without Beam: what a build's efficiency is measured against."""
    handle = codec_handle(CodecSettings(name='encodec_32khz', weights='random', seed=0, threads=os.cpu_count()))
    audio = np.concatenate([v[None] for v in synth_stems(1, seconds, 32000).values()]).sum(0, keepdims=True)
    spec = WindowSpec(10.24, None, MARGIN_SECONDS, 32000, 640, False, SPAN_WINDOWS)
    count = min(windows, len(spec.starts(audio.shape[-1])))
    chunked = spec.chunked('bench', 'mix', audio, range(count), False)
    encode_segments(handle.runtime, chunked.segments[:1])                # warm-up: export, compile
    start = time.perf_counter()
    encode_segments(handle.runtime, chunked.segments)
    return count * 10.24 / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--workers', default='1,2', help='Worker counts to compare. Default: 1,2.')
    parser.add_argument('--runner', default='direct', choices=('direct', 'dask'),
                        help='direct: the DirectRunner (multi-process for more than one worker); dask: '
                             '--preset=dask-local with --dask-workers=N. Default: direct.')
    parser.add_argument('--songs', type=int, default=6, help='Songs in the throughput corpus. Default: 6.')
    parser.add_argument('--parts', default='throughput,memory',
                        help='What to measure: throughput (codec only vs builds per worker count), memory '
                             '(4 vs 40 songs), long (one 10-minute, 16-stem song). Default: throughput,memory.')
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='stemforge-scale-')
    corpus = os.path.join(tmp, 'corpus')
    make_corpus(corpus, args.songs, 31.0)
    parts = set(args.parts.split(','))
    if 'throughput' in parts:
        throughput(corpus, tmp, args)
    if 'memory' in parts:
        memory(tmp)
    if 'long' in parts:
        long_song(tmp)


def throughput(corpus, tmp, args):
    print(f'cores: {os.cpu_count()}; corpus: {args.songs} songs x 31 s, 4 stereo 44.1 kHz stems; '
          f'guitar target, 1 assortment; runner: {args.runner}')
    codec_rate = codec_only_seconds_per_second(62.0, 6)
    print(f'codec only: {codec_rate:.2f} audio s per wall s')
    walls = {}
    runs = [(int(w), None) for w in args.workers.split(',')]
    if (1, None) in runs:
        runs.insert(runs.index((1, None)) + 1, (1, 1))   # one worker with one codec thread, like each of N
    for workers, threads in runs:
        if args.runner == 'dask':
            extra = ['--preset=dask-local', f'--dask-workers={workers}']
        else:
            extra = [] if workers == 1 else ['--direct_running_mode=multi_processing', f'--direct_num_workers={workers}']
        extra += [f'--codec-threads={threads}'] if threads else []
        label = f'{args.runner}: {workers} worker(s), {threads or max(1, (os.cpu_count() or 1) // workers)} codec thread(s) each'
        wall, peak, counters = build(corpus, os.path.join(tmp, f'out{workers}-{threads}'), extra)
        walls[(workers, threads)] = wall
        encoded = counters['EncodeChunksFn.windows_encoded'] * 10.24
        stages = {k.split('.')[-1]: v / 1000 for k, v in counters.items() if k.endswith('_ms') and 'audio' not in k}
        print(f'{label}: {wall:.1f} s wall, {encoded:.0f} s encoded, {encoded / wall:.2f} s/s, '
              f'efficiency {encoded / wall / codec_rate:.2f} (vs codec only), peak RSS {peak:.0f} MiB, '
              f'stage CPU seconds {json.dumps({k: round(v, 1) for k, v in sorted(stages.items())})}')
    for (workers, threads), wall in walls.items():
        if workers != 1:
            for base in [(1, None), (1, 1)]:
                if base in walls:
                    print(f'speed-up of {workers} workers over 1 worker with '
                          f'{"default" if base[1] is None else base[1]} codec thread(s): {walls[base] / wall:.2f}x')


def memory(tmp):
    peaks = {}
    for songs in (4, 40):
        small = os.path.join(tmp, f'mem{songs}')
        make_corpus(small, songs, 11.0)
        peaks[songs] = build(small, os.path.join(tmp, f'memout{songs}'))[1]
        print(f'{songs} songs of 11 s: peak RSS {peaks[songs]:.0f} MiB')
    print(f'peak RSS 40 songs / 4 songs: {peaks[40] / peaks[4]:.2f}')


def long_song(tmp):
    long_corpus = os.path.join(tmp, 'long')
    make_corpus(long_corpus, 1, 600.0, stems_per_song=16)
    # One target (the stem labelled 'guitar', not its 3 namesakes) and its context: 2 waveforms.
    wall, peak, _ = build(long_corpus, os.path.join(tmp, 'longout'), ['--target-label=guitar'])
    print(f'one 10-minute song, 16 stereo 44.1 kHz stems (one target): {wall:.0f} s wall, '
          f'peak RSS {peak:.0f} MiB')


if __name__ == '__main__':
    main()
