"""Cost of each augmentation and distortion next to the codec's encode, on one core.

Run: .venv/bin/python -m benchmarks.bench_render
For 60 s of generated multitrack audio at the working rate (32 kHz mono), prints the
real-time factor of every effect, of the codec's encode (one thread), and what the whole
Render stage (mix + augment + distort) costs relative to encoding the same audio. Then, for the
plans of a producer-style song (7 stems, drum target, 8 assortments, 4 augmentations, as
benchmarks/bench_corpus.py builds), the pitch/tempo work of augmenting each stem once per
variant and sharing it (what Render does) against augmenting every context mix.
"""
import time

import numpy as np
import torch

from schemas.audio_io import sum_audio
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


def per_context(audio, plans, rate):
    """The reference: every distinct context mix augmented after summing, and each target."""
    done = set()
    for plan in plans:
        for key, names in (((plan.target, plan.augmentation), (plan.target,)),
                           ((plan.context, plan.augmentation), plan.context)):
            if plan.augmentation is not None and key not in done:
                done.add(key)
                augment(sum_audio(audio[n] for n in names), rate, plan.augmentation)
    return len(done)


def per_stem(audio, plans, rate):
    """Render's way: each (stem, variant) augmented once; contexts sum the variants."""
    variants = {}
    for plan in plans:
        if plan.augmentation is None:
            continue
        for name in (plan.target,) + plan.context:
            if (name, plan.augmentation) not in variants:
                variants[(name, plan.augmentation)] = augment(audio[name], rate, plan.augmentation)
        sum_audio(variants[(n, plan.augmentation)] for n in plan.context)
    return len(variants)


def shared_variants(seconds: float = 25.0):
    from schemas.records import LoadedSong, SongRef
    from transforms.tasks.continuation.augment import AugmentSettings
    from transforms.tasks.continuation.distort import DistortSettings
    from transforms.tasks.continuation.plan import plan_song
    stems = synth_stems(3, seconds, RATE)
    audio = {name: stems[name][None] for name in ('drums', 'bass', 'guitar', 'keys')}
    audio.update({name: stems[src][None] * 0.8 for name, src in (('guitar#2', 'guitar'), ('keys#2', 'keys'),
                                                                   ('keys#3', 'bass'))})
    ref = SongRef(song_id='bench', artist='A', title='t', source='stems', input_path='p', container='zip',
                  content_sha256='0')
    song = LoadedSong(ref=ref, sample_rate_hz=RATE, audio=audio, split='train')
    settings = AugmentSettings(count=4, pitch_semitones=(-2, 2), tempo=(0.8, 1.25), gain_db=(-4, 4))   # the defaults
    plans, _ = plan_song(song, ('drums',), 8, 3, 0, settings, DistortSettings())
    context_time = _timed(lambda: per_context(audio, plans, RATE), repeats=2)
    stem_time = _timed(lambda: per_stem(audio, plans, RATE), repeats=2)
    calls = per_context(audio, plans, RATE), per_stem(audio, plans, RATE)
    print(f'augmenting a {seconds:g} s song of {len(audio)} stems, drum target, 8 assortments, 4 variants: '
          f'every context mix {context_time:.2f} s ({calls[0]} pitch/tempo passes), each stem once per variant '
          f'{stem_time:.2f} s ({calls[1]} passes): {context_time / stem_time:.2f}x less')


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
    shared_variants()


if __name__ == '__main__':
    main()
