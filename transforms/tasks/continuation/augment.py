"""Augmentation: pitch shift, tempo change and gain, applied alike to a variant's context and target.

``--augmentations=N`` adds N variants of every planned example. The parameters of a
variant are drawn at planning time from an RNG seeded by the global seed, the song, the
target and the variant index, so they are data in the plan and land in the metadata.
Pitch and tempo use Rubber Band through Spotify's pedalboard (C++, transient-preserving).
"""
import dataclasses

import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.records import AugmentParams

AUGMENT_SPLITS = ('train', 'all')


class AugmentOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--augmentations', type=int, default=4,
                            help='Augmented variants added next to every planned example. Default: 4.')
        parser.add_argument('--pitch-semitones', default='-2,2',
                            help='Pitch shift range in semitones, "lo,hi" (fractions allowed; 0 disables). '
                                 'Default: -2,2.')
        parser.add_argument('--tempo-range', default='0.8,1.25',
                            help='Tempo factor range without pitch change, "lo,hi" (1.25 = 25%% faster; 1 '
                                 'disables). Default: 0.8,1.25.')
        parser.add_argument('--gain-db', default='-4,4',
                            help='Gain range in dB, "lo,hi" (0 disables). Default: -4,4.')
        parser.add_argument('--augment-splits', default='train', choices=AUGMENT_SPLITS,
                            help='train: validation and test stay clean (no augmentation, no distortion); '
                                 'all: augment and distort every split (as --augment-eval). Default: train.')
        parser.add_argument('--augment-eval', action='store_true', default=False,
                            help='Augment and distort validation and test examples too (the same as '
                                 '--augment-splits=all; recorded in the manifest). Default: off, '
                                 'evaluation stays clean.')


def parse_range(flag: str, text, neutral: float) -> tuple:
    """'lo,hi' (or one number: that value only; the neutral value alone disables) -> (lo, hi)."""
    try:
        values = [float(v) for v in str(text).split(',')]
    except ValueError:
        raise ValueError(f'{flag}: expected "lo,hi", got {text!r}') from None
    if len(values) == 1:
        values = [min(values[0], neutral), max(values[0], neutral)] if values[0] != neutral else [neutral] * 2
    if len(values) != 2 or values[0] > values[1]:
        raise ValueError(f'{flag}: expected "lo,hi" with lo <= hi, got {text!r}')
    return tuple(values)


@dataclasses.dataclass(frozen=True)
class AugmentSettings:
    count: int = 0
    pitch_semitones: tuple = (0.0, 0.0)
    tempo: tuple = (1.0, 1.0)
    gain_db: tuple = (0.0, 0.0)
    splits: str = 'train'

    def __post_init__(self):
        if self.count < 0:
            raise ValueError('--augmentations must be 0 or more')
        if self.tempo[0] <= 0:
            raise ValueError('--tempo-range must be positive')

    @classmethod
    def from_args(cls, args) -> 'AugmentSettings':
        return cls(count=args.augmentations,
                   pitch_semitones=parse_range('--pitch-semitones', args.pitch_semitones, 0.0),
                   tempo=parse_range('--tempo-range', args.tempo_range, 1.0),
                   gain_db=parse_range('--gain-db', args.gain_db, 0.0),
                   splits='all' if getattr(args, 'augment_eval', False) else args.augment_splits)

    def variants_for(self, split: str) -> int:
        return self.count if self.alters(split) else 0

    def alters(self, split: str) -> bool:
        """Whether examples of ``split`` are augmented and distorted (train, or every split)."""
        return self.splits == 'all' or split == 'train'


def draw_params(settings: AugmentSettings, rng) -> AugmentParams:
    """One variant's parameters, rounded so the metadata states exactly what is applied."""
    draw = lambda lo_hi: float(lo_hi[0]) if lo_hi[0] == lo_hi[1] else float(rng.uniform(*lo_hi))
    return AugmentParams(pitch_semitones=round(draw(settings.pitch_semitones), 3),
                         tempo=round(draw(settings.tempo), 4), gain_db=round(draw(settings.gain_db), 2))


def augmented_length(num_samples: int, params) -> int:
    """The length of a waveform after the variant's tempo change."""
    return num_samples if params is None else int(round(num_samples / params.tempo))


def augment(audio: np.ndarray, rate: int, params: AugmentParams) -> np.ndarray:
    """Applies pitch, tempo and gain; the result has exactly ``augmented_length`` samples."""
    if params is None:
        return audio
    out = audio
    if params.pitch_semitones != 0 or params.tempo != 1:
        import pedalboard
        out = pedalboard.time_stretch(np.ascontiguousarray(audio, dtype=np.float32), float(rate),
                                      stretch_factor=float(params.tempo),
                                      pitch_shift_in_semitones=float(params.pitch_semitones))
    length = augmented_length(audio.shape[-1], params)
    out = out[:, :length] if out.shape[-1] >= length else np.pad(out, ((0, 0), (0, length - out.shape[-1])))
    if params.gain_db:
        out = out * np.float32(10 ** (params.gain_db / 20))
    return np.ascontiguousarray(out, dtype=np.float32)
