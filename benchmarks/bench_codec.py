"""Codec encode speed per runtime and batch size, and each runtime's code agreement with torch eager.

Run: .venv/bin/python -m benchmarks.bench_codec [--device cuda] [--batch-sizes 1,8] [--span 2]
     [--runtimes torch,onnxruntime,openvino] [--precisions fp32,bf16] [--codec encodec_32khz]
Encodes the same segments (as the pipeline cuts them by default: two 10.24 s windows with 0.25 s
margins, 20.96 s, from a synthesized mix; ``--span 1`` for one window) in one run: first through
the model's own eager ``encode`` at batch 1 (the reference, "torch eager"), then through each
runtime at each batch size (fixed-shape batches, as the pipeline sends them), each in a fresh
process as a pipeline worker runs it (the exported runtimes from their export, without PyTorch
in the process), and prints each one's real-time factor (audio seconds per wall second), its
ratio to torch eager and the share of its codes equal to the reference's (all codebooks, and the
first). Figures only; nothing asserts.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from transforms.chunk import WindowSpec
from transforms.codec import CodecSettings, _torch, load_codec, resolve_device
from transforms.codec_options import MARGIN_SECONDS, SPAN_WINDOWS
from transforms.codec_runtime import load_exported_runtime, load_runtime
from transforms.encode import encode_batch
from transforms.synth import synth_mix


def segments_for(count: int, spec, window_seconds: float, span: int):
    """``count`` segments of ``span`` windows with the pipeline's margins, from one generated mix."""
    window = WindowSpec(window_seconds, None, MARGIN_SECONDS, spec.sample_rate_hz, spec.hop_length, False, span)
    audio = synth_mix(7, window_seconds * span * (count + 1) + 1.5, spec.sample_rate_hz, spec.channels)
    segments = window.chunked('bench', 'mix', audio, range(span * (count + 1)), False).segments
    length = window.segment_samples(span)
    return [s for s in segments if s.audio.shape[-1] == length][:count]


def run_batches(runtime, segments) -> list:
    return [w for i in range(0, len(segments), runtime.batch_size)
            for w in encode_batch(runtime, segments[i:i + runtime.batch_size])]


def timed(fn, repeats: int):
    fn()                                             # warm-up (export, compile, allocator)
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return (time.perf_counter() - start) / repeats, out


def agreement(found, reference):
    same = np.concatenate([(f[w][0] == r[w][0]).ravel() for f, r in zip(found, reference) for w in r])
    first = np.concatenate([(f[w][0][0] == r[w][0][0]) for f, r in zip(found, reference) for w in r])
    return same.mean() * 100, first.mean() * 100


def eager_reference(codec, segments):
    """The model's own encode (weight norms computed per call), one segment at a time."""
    out = []
    for s in segments:
        codes = codec.encode(s.audio[None])[0][0]
        out.append({w: (codes[:, o:o + s.frames].astype(np.int16), None)
                    for w, o in zip(s.windows, s.offsets_frames)})
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N. Default: auto.')
    parser.add_argument('--batch-sizes', default=None,
                        help='Comma-separated. Default: 32,128,512 on CUDA, 1,8 on CPU.')
    parser.add_argument('--runtimes', default=None,
                        help='Comma-separated. Default: torch,onnxruntime on CUDA, torch,onnxruntime,openvino on CPU.')
    parser.add_argument('--precisions', default='fp32', help='Comma-separated (bf16/fp16: torch only). Default: fp32.')
    parser.add_argument('--weights', default='random', choices=['random', 'pretrained'],
                        help='random (offline) or pretrained (downloads the checkpoint). Default: random.')
    parser.add_argument('--codec', default='encodec_32khz')
    parser.add_argument('--threads', type=int, default=0, help='Runtime threads; 0 = all cores. Default: 0.')
    parser.add_argument('--repeats', type=int, default=1, help='Timed passes per figure. Default: 1.')
    parser.add_argument('--window-seconds', type=float, default=10.24,
                        help='Window length; segments add the pipeline\'s margins on each side. Default: 10.24.')
    parser.add_argument('--span', type=int, default=SPAN_WINDOWS,
                        help=f'Windows per segment. Default: {SPAN_WINDOWS}, as the pipeline.')
    parser.add_argument('--figure', default=None, help=argparse.SUPPRESS)   # runtime,precision,batch,count,out
    args = parser.parse_args()
    if args.figure:
        return figure(args)
    device = args.device = resolve_device(args.device)
    torch = _torch()
    threads = args.threads or os.cpu_count()
    cuda = device.startswith('cuda')
    batches = [int(b) for b in (args.batch_sizes or ('32,128,512' if cuda else '1,8')).split(',')]
    runtimes = (args.runtimes or ('torch,onnxruntime' if cuda else 'torch,onnxruntime,openvino')).split(',')
    base = CodecSettings(name=args.codec, weights=args.weights, device=device, threads=threads)
    codec = load_codec(base)
    segments = segments_for(max(batches), codec.spec, args.window_seconds, args.span)
    seconds = sum(s.audio.shape[-1] for s in segments) / codec.spec.sample_rate_hz
    name = torch.cuda.get_device_name(device) if cuda else f'CPU, {threads} threads'
    print(f'device: {device} ({name}); torch {torch.__version__}; codec {args.codec}, weights {args.weights}; '
          f'{len(segments)} segments of {segments[0].audio.shape[-1] / codec.spec.sample_rate_hz:.2f} s '
          f'({seconds:.0f} s of audio) per figure')
    eager_segments = segments[:min(len(segments), 8)]
    wall, reference = timed(lambda: eager_reference(codec, eager_segments), args.repeats)
    eager = len(eager_segments) * segments[0].audio.shape[-1] / codec.spec.sample_rate_hz / wall
    print(f'torch eager (model.encode, batch 1): real-time factor {eager:.1f}x')
    for precision in args.precisions.split(','):
        for runtime_name in runtimes:
            if precision != 'fp32' and runtime_name != 'torch':
                continue
            settings = base.replace(runtime=runtime_name, precision=precision)
            if runtime_name != 'torch':
                load_runtime(load_codec(settings), 1)        # exported (once per weights) before timing
            for batch in batches:
                wall, found, version = in_fresh_process(args, runtime_name, precision, batch, len(segments))
                same, first = agreement(found, reference)
                print(f'{runtime_name} {version.split("-")[0]} {precision} batch {batch}: '
                      f'real-time factor {seconds / wall:.1f}x ({seconds / wall / eager:.2f}x torch eager); '
                      f'codes equal to torch eager: {same:.2f} % ({first:.2f} % in the first codebook)',
                      flush=True)


def in_fresh_process(args, runtime_name, precision, batch, count):
    """(seconds per pass, codes, runtime version) of one figure, measured in a new process."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, 'codes.npz')
        command = [sys.executable, '-m', 'benchmarks.bench_codec', f'--device={args.device}',
                   f'--weights={args.weights}', f'--codec={args.codec}', f'--threads={args.threads}',
                   f'--repeats={args.repeats}', f'--window-seconds={args.window_seconds}', f'--span={args.span}',
                   f'--figure={runtime_name},{precision},{batch},{count},{out}']
        printed = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(printed.strip().splitlines()[-1])
        with np.load(out) as stored:
            found = [{} for _ in range(count)]
            for key in stored.files:
                i, w = key.split(':')
                found[int(i)][int(w)] = (stored[key], None)
    return result['wall'], found, result['version']


def figure(args):
    """One figure in this process: the runtime as a worker starts it, the segments' passes timed."""
    runtime_name, precision, batch, count, out = args.figure.split(',')
    settings = CodecSettings(name=args.codec, weights=args.weights, device=args.device, runtime=runtime_name,
                             precision=precision, threads=args.threads or os.cpu_count())
    runtime = load_exported_runtime(settings, int(batch)) or load_runtime(load_codec(settings), int(batch))
    segments = segments_for(int(count), settings.spec, args.window_seconds, args.span)
    wall, found = timed(lambda: run_batches(runtime, segments), args.repeats)
    np.savez(out, **{f'{i}:{w}': codes for i, f in enumerate(found) for w, (codes, _) in f.items()})
    print(json.dumps({'wall': wall, 'version': runtime.version}))

if __name__ == '__main__':
    main()
