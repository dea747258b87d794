"""A stand-in for a user's first real build: 10 songs x 25 s, 4-8 stems each with drums, drum
target, 8 assortments, 4 augmentations (the default distortions), random-weight 32 kHz codec.

Run: .venv/bin/python -m benchmarks.bench_corpus [--songs 10] [--runtimes auto] [--extra FLAGS]
Builds the generated corpus once per runtime, each in a fresh process, and prints wall time,
examples, windows and audio seconds encoded, codec input seconds per window second, peak RSS,
and the codec's and the other stages' CPU seconds. Figures only; nothing asserts.
"""
import argparse
import io
import json
import os
import shlex
import tempfile
import zipfile

import numpy as np
import soundfile as sf

from benchmarks.bench_scale import build
from transforms.synth import synth_stems

# The extra stems a song may have besides drums, bass, guitar and keys: names a producer's export
# uses, each a re-voiced copy of a generated part.
EXTRA_STEMS = ('Guitar 2.wav', 'Piano.wav', 'Synth Lead.wav', 'Strings.wav')
FLAGS = ['--target-stem=drums', '--assortments=8', '--augmentations=4']


def make_corpus(root: str, songs: int, seconds: float, rate: int = 44100) -> None:
    for i in range(songs):
        stems = synth_stems(900 + i, seconds, rate)
        members = {f'{name.capitalize()}.wav': audio for name, audio in stems.items()}
        rng = np.random.default_rng(i)
        for k, name in enumerate(EXTRA_STEMS[:int(rng.integers(0, len(EXTRA_STEMS) + 1))]):
            source = synth_stems(1900 + 10 * i + k, seconds, rate)[('guitar', 'keys', 'bass', 'keys')[k]]
            members[name] = source * 0.8
        path = os.path.join(root, f'artist{i % 7}', f'song{i}.zip')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with zipfile.ZipFile(path, 'w') as archive:
            for name, audio in members.items():
                buf = io.BytesIO()
                sf.write(buf, np.repeat(audio[:, None], 2, axis=1), rate, format='WAV', subtype='PCM_16')
                archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), buf.getvalue())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--songs', type=int, default=10, help='Songs in the corpus. Default: 10.')
    parser.add_argument('--seconds', type=float, default=25.0, help='Song length. Default: 25.')
    parser.add_argument('--runtimes', default='auto', help='Comma-separated --codec-runtime values. Default: auto.')
    parser.add_argument('--extra', default='', help='More build flags, one string. Default: none.')
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix='stemforge-corpus-')
    corpus = os.path.join(tmp, 'corpus')
    make_corpus(corpus, args.songs, args.seconds)
    print(f'cores: {os.cpu_count()}; corpus: {args.songs} songs x {args.seconds:g} s, 4-8 stereo 44.1 kHz stems; '
          f'flags: {" ".join(FLAGS)} {args.extra}')
    for runtime in args.runtimes.split(','):
        out = os.path.join(tmp, f'out-{runtime}')
        extra = FLAGS + [f'--codec-runtime={runtime}', '--distort-p=0.5'] + shlex.split(args.extra)
        wall, peak, counters = build(corpus, out, extra)
        with open(os.path.join(out, 'manifest.json')) as f:
            manifest = json.load(f)
        windows = counters.get('EncodeChunksFn.windows_encoded', 0)
        window_s = windows * manifest['windows']['chunk_samples'] / manifest['windows']['sample_rate_hz']
        codec_in = counters.get('EncodeChunksFn.codec_input_ms', 0) / 1000
        stages = {k.split('.')[-1]: round(v / 1000, 1) for k, v in counters.items()
                  if k.endswith('_ms') and 'audio' not in k and 'input' not in k}
        print(f'--codec-runtime={runtime} ({manifest["codec"]["runtime"]}): {wall:.0f} s wall, '
              f'{manifest["totals"]["examples"]} examples, {windows} windows ({window_s:.0f} s) encoded, '
              f'{window_s / wall:.2f} window s per wall s, codec input {codec_in / max(window_s, 1e-9):.3f} s per '
              f'window s, peak RSS {peak:.0f} MiB, stage seconds {json.dumps(stages)}', flush=True)


if __name__ == '__main__':
    main()
