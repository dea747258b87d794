"""Cost of each augmentation and distortion next to the codec's encode, on one core.

Run: .venv/bin/python -m benchmarks.bench_render
For 60 s of generated multitrack audio at the working rate (32 kHz mono), prints the
real-time factor of every effect, of the codec's encode (one thread), and what the whole
Render stage (mix + augment + distort) costs relative to encoding the same audio.
"""
import time

import numpy as np
import torch

from schemas.ids import seeded_rng
from schemas.records import AugmentParams, DistortionStep
from transforms.tasks.continuation.augment import augment
from transforms.codec import CodecSettings, load_codec
from transforms.tasks.continuation.distort import DISTORTIONS, distort
from transforms.synth import synth_stems

RATE = 32000
SECONDS = 60.0


def _timed(fn, repeats=3):
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    torch.set_num_threads(1)
    stems = {k: v[None] for k, v in synth_stems(1, SECONDS, RATE).items()}
    mix = np.sum(list(stems.values()), axis=0)
    rows = []
    rows.append(('mix (sum of 3 stems + gain)', _timed(lambda: np.sum([stems['drums'], stems['bass'],
                                                                       stems['keys']], axis=0) * 0.9)))
    for name, params in (('pitch shift +1.5 st', AugmentParams(pitch_semitones=1.5)),
                         ('tempo x1.1', AugmentParams(tempo=1.1)),
                         ('pitch + tempo together', AugmentParams(pitch_semitones=1.5, tempo=1.1)),
                         ('gain -3 dB', AugmentParams(gain_db=-3.0))):
        rows.append((name, _timed(lambda: augment(mix, RATE, params))))
    distortion_times = {}
    for name, (draw, _) in DISTORTIONS.items():
        step = DistortionStep(name, tuple(sorted(draw(seeded_rng(0, name)).items())))
        distortion_times[name] = _timed(lambda: distort(mix, RATE, [step]), repeats=2)
        rows.append((f'distort: {name}', distortion_times[name]))
    codec = load_codec(CodecSettings(name='encodec_32khz', weights='random', seed=0, threads=1))
    window = mix[:, :int(11.24 * RATE)]
    encode_one = _timed(lambda: codec.encode(window[None]), repeats=2)
    encode = encode_one * SECONDS / 11.24
    rows.append(('encode (encodec_32khz, 1 thread, 11.24 s segments)', encode))
    print(f'{"effect":55s} {"seconds per 60 s":>16s} {"real-time factor":>17s}')
    for name, seconds in rows:
        print(f'{name:55s} {seconds:16.3f} {SECONDS / seconds:16.1f}x')
    # The expected Render cost of one augmented, possibly distorted context with the defaults:
    # mix + pitch/tempo/gain + p(0.5) x mean number of effects (1.5) x mean effect cost.
    mean_effect = float(np.mean(list(distortion_times.values())))
    render = rows[0][1] + rows[3][1] + rows[4][1] + 0.5 * 1.5 * mean_effect
    print(f'render per augmented context (defaults): {render:.3f} s per 60 s = '
          f'{100 * render / encode:.1f} % of its encode time')
    original = rows[0][1] + 0.5 * 1.5 * mean_effect
    print(f'render per original context (no augmentation): {original:.3f} s per 60 s = '
          f'{100 * original / encode:.1f} % of its encode time')
    weighted = (original + 4 * render) / 5
    print(f'render per train example with the defaults (1 original + 4 variants): '
          f'{100 * weighted / encode:.1f} % of encode time')


if __name__ == '__main__':
    main()
