"""Distortion: simulated real-world input conditions, applied to the context only.

With probability ``--distort-p`` an example's context gets one to ``--distort-max``
effects from ``--distortions``, each with parameters drawn from its range at planning
time (seeded by the global seed and the context's identity). Effects work on
``[channels, samples]`` and keep the length and the channel count.
"""
import dataclasses

import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.records import DistortionStep

EQ_CENTRES_HZ = (63, 160, 400, 1000, 2500, 6300, 14000)


def _uniform(rng, lo, hi, digits=2):
    return round(float(rng.uniform(lo, hi)), digits)


def _board(plugins, audio, rate):
    import pedalboard
    return pedalboard.Pedalboard(plugins)(np.ascontiguousarray(audio, dtype=np.float32), float(rate))


def _bandstop(audio, rate, p):
    import pedalboard
    return _board([pedalboard.PeakFilter(cutoff_frequency_hz=p["centre_hz"], gain_db=-30.0, q=p["q"])],
                  audio, rate)


def _reverb(audio, rate, p):
    import pedalboard
    return _board([pedalboard.Reverb(room_size=p['room_size'], damping=p['damping'], wet_level=p['wet_level'],
                                     dry_level=1.0 - p['wet_level'])], audio, rate)


def _eq(audio, rate, p):
    import pedalboard
    bands = [pedalboard.PeakFilter(cutoff_frequency_hz=f, gain_db=g, q=1.0)
             for f, g in zip(EQ_CENTRES_HZ, p['gains_db']) if f < 0.45 * rate]
    return _board(bands, audio, rate)


def _noise(audio, rate, p):
    power = float(np.mean(np.square(audio, dtype=np.float64)))
    noise = np.random.default_rng(p['seed']).standard_normal(audio.shape)
    return (audio + noise * np.sqrt(power / 10 ** (p['snr_db'] / 10))).astype(np.float32)


def _bitcrush(audio, rate, p):
    steps = float(2 ** (p['bits'] - 1))
    return (np.round(np.clip(audio, -1, 1) * steps) / steps).astype(np.float32)


def _overdrive(audio, rate, p):
    import pedalboard
    return _board([pedalboard.Distortion(drive_db=p['drive_db'])], audio, rate)


def _telephone(audio, rate, p):
    import pedalboard
    return _board([pedalboard.HighpassFilter(p['low_hz']), pedalboard.HighpassFilter(p['low_hz']),
                   pedalboard.LowpassFilter(p['high_hz']), pedalboard.LowpassFilter(p['high_hz'])], audio, rate)


def _lossy(audio, rate, p):
    """An MP3 or Opus round trip in process (PyAV): encoder delay is written to the stream and
    trimmed on decoding, so the result stays aligned with the input."""
    from schemas.av_audio import lossy_round_trip
    return lossy_round_trip(audio, rate, p['codec'], p['kbps'])


# name -> (draw parameters from an rng, apply). Ranges are the documented defaults.
DISTORTIONS = {
    'bandstop': (lambda r: {'centre_hz': _uniform(r, 500, 4000, 1), 'q': _uniform(r, 1.0, 4.0)}, _bandstop),
    'reverb': (lambda r: {'room_size': _uniform(r, 0.2, 0.9), 'damping': _uniform(r, 0.2, 0.8),
                          'wet_level': _uniform(r, 0.1, 0.4)}, _reverb),
    'eq': (lambda r: {'gains_db': tuple(_uniform(r, -3.5, 3.5) for _ in EQ_CENTRES_HZ)}, _eq),
    'noise': (lambda r: {'snr_db': _uniform(r, 20, 35), 'seed': int(r.integers(0, 2**31))}, _noise),
    'bitcrush': (lambda r: {'bits': int(r.integers(5, 11))}, _bitcrush),
    'overdrive': (lambda r: {'drive_db': _uniform(r, 6, 24)}, _overdrive),
    'lossy': (lambda r: {'codec': str(r.choice(['mp3', 'opus'])), 'kbps': int(r.choice([32, 48, 64, 96]))},
              _lossy),
    'telephone': (lambda r: {'low_hz': _uniform(r, 200, 400, 1), 'high_hz': _uniform(r, 3000, 3800, 1)},
                  _telephone),
}


class DistortOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--distort-p', type=float, default=0.5,
                            help='Probability that a train example\'s context is distorted (every split\'s '
                                 'with --augment-eval). Default: 0.5.')
        parser.add_argument('--distort-max', type=int, default=2,
                            help='Most effects applied to one context (at least one when distorted). '
                                 'Default: 2.')
        parser.add_argument('--distortions', default=','.join(DISTORTIONS),
                            help=f'Effects to choose from. Default: {",".join(DISTORTIONS)}.')


@dataclasses.dataclass(frozen=True)
class DistortSettings:
    names: tuple = ()
    p: float = 0.0
    max_effects: int = 1

    def __post_init__(self):
        if not 0 <= self.p <= 1 or self.max_effects < 1:
            raise ValueError('--distort-p must be in [0, 1] and --distort-max at least 1')

    @classmethod
    def from_args(cls, args) -> 'DistortSettings':
        return cls(names=parse_distortions(args.distortions), p=args.distort_p, max_effects=args.distort_max)


def parse_distortions(text) -> tuple:
    names = tuple(n.strip() for n in str(text).split(',') if n.strip())
    unknown = sorted(set(names) - set(DISTORTIONS))
    if unknown:
        raise ValueError(f'--distortions: unknown effect(s) {unknown}; choose from {list(DISTORTIONS)}')
    return names


def draw_distortion(settings: DistortSettings, rng) -> tuple:
    """The effects (DistortionSteps) for one context, possibly none."""
    names = settings.names
    if not names or rng.random() >= settings.p:
        return ()
    count = int(rng.integers(1, min(settings.max_effects, len(names)) + 1))
    chosen = [names[i] for i in rng.permutation(len(names))[:count]]
    return tuple(DistortionStep(name=n, params=tuple(sorted(DISTORTIONS[n][0](rng).items()))) for n in chosen)


def distort(audio: np.ndarray, rate: int, steps) -> np.ndarray:
    """Applies the steps in order; length and channel count are kept."""
    for step in steps:
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in step.params}
        out = DISTORTIONS[step.name][1](audio, rate, params)
        if out.shape != audio.shape:
            raise RuntimeError(f'distortion {step.name} changed the shape {audio.shape} -> {out.shape}')
        audio = out
    return audio
