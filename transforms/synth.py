"""Synthesized multitrack music: drums, bass, guitar and keys stems from a seed.

Used for the demo corpus and for the calibration signal that seeds random-weight
codebooks. Plain numpy, deterministic for a given seed.
"""
import numpy as np

STEMS = ('drums', 'bass', 'guitar', 'keys')
_SCALE = np.array([0, 2, 3, 5, 7, 8, 10])  # natural minor


def _midi_hz(note):
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69) / 12)


def _envelope(n, rate, attack_s, decay_s):
    t = np.arange(n) / rate
    return np.minimum(1.0, t / max(attack_s, 1e-4)) * np.exp(-t / decay_s)


def _drums(rng, n, rate, beat):
    out = np.zeros(n)
    step = int(beat * rate / 2)
    for i, pos in enumerate(range(0, n, step)):
        length = min(int(0.25 * rate), n - pos)
        t = np.arange(length) / rate
        if i % 4 == 0:      # kick: falling sine
            hit = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
        elif i % 4 == 2:    # snare: noise and tone
            hit = (0.6 * rng.standard_normal(length) + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 20)
        else:               # hat: short noise
            hit = 0.3 * rng.standard_normal(length) * np.exp(-t * 60)
        out[pos:pos + length] += hit
    return out


def _line(rng, n, rate, beat, root, octave, notes_per_beat, voice):
    out = np.zeros(n)
    step = int(beat * rate / notes_per_beat)
    for pos in range(0, n, step):
        length = min(step, n - pos)
        degree = _SCALE[rng.integers(0, len(_SCALE))]
        t = np.arange(length) / rate
        out[pos:pos + length] += voice(_midi_hz(root + 12 * octave + degree), t, rate)
    return out


def _bass_voice(f, t, rate):
    saw = 2 * ((f * t) % 1.0) - 1
    return (0.5 * np.sin(2 * np.pi * f * t) + 0.3 * saw) * _envelope(len(t), rate, 0.005, 0.4)


def _guitar_voice(f, t, rate):
    # A plucked string: harmonics decaying faster the higher they are.
    tone = sum(np.sin(2 * np.pi * f * k * t) * np.exp(-t * 3 * k) / k for k in range(1, 7))
    return 0.5 * tone * _envelope(len(t), rate, 0.002, 0.8)


def _keys_voice(f, t, rate):
    chord = sum(np.sin(2 * np.pi * f * r * t) for r in (1.0, 1.189, 1.498))
    return 0.25 * chord * _envelope(len(t), rate, 0.02, 1.5)


def synth_stems(seed: int, seconds: float, rate: int) -> dict:
    """Returns {stem name: float32 mono audio} for one synthesized song."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    beat = 60.0 / rng.uniform(80, 150)
    root = int(rng.integers(36, 48))
    stems = {
        'drums': _drums(rng, n, rate, beat),
        'bass': _line(rng, n, rate, beat, root, 0, 1, _bass_voice),
        'guitar': _line(rng, n, rate, beat, root, 2, 2, _guitar_voice),
        'keys': _line(rng, n, rate, beat, root, 1, 0.5, _keys_voice),
    }
    return {name: (0.5 * s / max(1e-9, np.max(np.abs(s)))).astype(np.float32) for name, s in stems.items()}


def synth_mix(seed: int, seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """A mix of all stems of a synthesized song, ``[channels, samples]`` float32."""
    mix = sum(synth_stems(seed, seconds, rate).values())
    mix = (0.9 * mix / max(1e-9, np.max(np.abs(mix)))).astype(np.float32)
    return np.repeat(mix[None], channels, axis=0)
