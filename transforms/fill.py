"""FillMissing: give every song every requested instrument, from a reserve of tracks.

``--fill-missing=reserve`` sets aside a reserve in every split (``--reserve-fraction`` of its
groups, drawn by a stable hash; reserve songs yield no examples), and adds to each other song
lacking a requested class a stem of that class drawn deterministically from the reserve of the
song's own split, so no stem audio sits on both sides of a split; a split without a reserve song
of the class leaves its songs unfilled (counted). LoadStems loops or cuts the donor to the song's
length and matches its level to the song's own stems; the donor track, stem, song id and split
stay in the stem's record and in every example that uses it (``pipelines.verify`` checks them).
``--fill-missing=skip`` (the default) passes songs through and counts those lacking a class.
``--fill-missing=silence`` passes songs through and counts them too: the task writes an all-zero
target for a missing class and flags it (``--task=separation``; other tasks refuse it).
"""
import dataclasses

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.audio_io import rms_dbfs
from schemas.ids import stable_fraction, stable_id
from schemas.records import SongRef
from transforms.sources.archive import member_label

RESERVE = 'reserve'
MODES = ('skip', 'reserve', 'silence')
DONOR_MAX_GAIN_DB = 24.0


class FillOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--fill-missing', default='skip', choices=list(MODES),
                            help='Songs lacking a target class (--target-stem; --targets with '
                                 '--task=separation). skip: leave them out of that target (separation: '
                                 'leave the song out), counted. reserve: set aside a reserve of training '
                                 'tracks and mix in a stem of the class from it. silence (separation '
                                 'only): write an all-zero target and flag it. Default: skip.')
        parser.add_argument('--reserve-fraction', type=float, default=0.1,
                            help='Share of each split\'s groups set aside as its reserve with '
                                 '--fill-missing=reserve (a song is filled from its own split\'s reserve '
                                 'only). Default: 0.1.')


def is_reserve_group(group: str, fraction: float) -> bool:
    """Whether a group belongs to the reserve of its split: its stable hash falls below
    ``fraction`` (so a group is reserved whole, in whichever split it is)."""
    return stable_fraction('reserve', group) < fraction


def reference_level(stems) -> float:
    """The level donors are matched to: the median RMS (dBFS) of the song's audible stems."""
    levels = [rms_dbfs(s) for s in stems]
    levels = [level for level in levels if np.isfinite(level)]
    return float(np.median(levels)) if levels else -np.inf


def fit_donor(samples: np.ndarray, length: int, level_db: float) -> np.ndarray:
    """Loops or cuts a donor stem to ``length`` samples and scales it to ``level_db`` RMS
    (at most DONOR_MAX_GAIN_DB louder, and never past full scale)."""
    if samples.shape[-1] < length:
        samples = np.tile(samples, (1, -(-length // samples.shape[-1])))
    samples = samples[:, :length]
    have = rms_dbfs(samples)
    if not np.isfinite(have) or not np.isfinite(level_db):
        return samples.astype(np.float32)
    gain = 10.0 ** (min(level_db - have, DONOR_MAX_GAIN_DB) / 20.0)
    peak = float(np.max(np.abs(samples))) * gain
    if peak > 0.99:
        gain *= 0.99 / peak
    return (samples * np.float32(gain)).astype(np.float32)


def donor_entries(item):
    """(split, reserve song) -> its stems as (split, class, sort key, StemRef named as a donor)."""
    split, ref = item
    for stem in ref.stems:
        if stem.donor:
            continue
        name = f'{ref.title}/{member_label(stem.member) if stem.stream is None else stem.label}'
        yield split, stem.instrument, stable_id('donor', ref.song_id, stem.instance), dataclasses.replace(
            stem, donor=name, donor_song_id=ref.song_id, donor_split=split)


class SetAsideReserveFn(beam.DoFn):
    """SongRef -> songs (main) and (split, reserve song) (``reserve``)."""

    def __init__(self, fraction: float):
        self.fraction = fraction
        self.songs_reserved = Metrics.counter(self.__class__, 'songs_reserved')

    def process(self, ref: SongRef, policy):
        if is_reserve_group(ref.group, self.fraction):
            self.songs_reserved.inc()
            yield pvalue.TaggedOutput(RESERVE, (policy.split(ref), ref))
        else:
            yield ref


class FillFromReserveFn(beam.DoFn):
    """Adds to a song a donor stem of each requested class it lacks."""

    def __init__(self, classes: tuple, seed: int):
        self.classes = classes
        self.seed = seed
        self.stems_filled = Metrics.counter(self.__class__, 'stems_filled')
        self.songs_unfillable = Metrics.counter(self.__class__, 'songs_unfillable')

    def process(self, ref: SongRef, donors, policy):
        split = policy.split(ref)
        by_class = {}
        for donor_split, cls, key, stem in sorted(donors, key=lambda d: d[:3]):
            if donor_split == split:
                by_class.setdefault(cls, []).append(stem)
        have = {s.instrument for s in ref.stems}
        added = []
        for cls in self.classes:
            if cls in have:
                continue
            pool = by_class.get(cls)
            if not pool:
                self.songs_unfillable.inc()
                continue
            stem = pool[int(stable_fraction(self.seed, 'donor', ref.song_id, cls) * len(pool))]
            added.append(dataclasses.replace(stem, instance=cls))
            self.stems_filled.inc()
        yield dataclasses.replace(ref, stems=ref.stems + tuple(added)) if added else ref


class CountMissingFn(beam.DoFn):
    """Passes songs through, counting those lacking a requested class (--fill-missing=skip or
    silence)."""

    def __init__(self, classes: tuple):
        self.classes = classes

    def process(self, ref: SongRef):
        have = {s.instrument for s in ref.stems}
        for cls in self.classes:
            if cls not in have:
                Metrics.counter(self.__class__, f'songs_missing_{cls}').inc()
        yield ref


class FillMissing(beam.PTransform):
    """SongRef -> SongRef: the reserve set aside and the other songs filled (mode 'reserve'), or
    every song passed through and the missing classes counted (modes 'skip' and 'silence'; with
    'silence' the task writes the missing targets as silence)."""

    def __init__(self, mode: str, classes: tuple, fraction: float, policy=None, seed: int = 0):
        """``policy``: the PlanSplits singleton (needed with mode 'reserve')."""
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'--fill-missing must be one of {", ".join(MODES)}, got {mode!r}')
        if mode == 'reserve' and not classes:
            raise ValueError('--fill-missing=reserve needs the classes to fill: give --target-stem')
        if mode == 'reserve' and not 0 < fraction < 1:
            raise ValueError(f'--reserve-fraction must be between 0 and 1, got {fraction}')
        self.mode, self.classes, self.fraction = mode, tuple(classes), fraction
        self.policy, self.seed = policy, seed

    def expand(self, songs):
        if self.mode != RESERVE:
            return songs | 'CountMissing' >> beam.ParDo(CountMissingFn(self.classes))
        policy = pvalue.AsSingleton(self.policy)
        parts = songs | 'SetAsideReserve' >> beam.ParDo(
            SetAsideReserveFn(self.fraction), policy).with_outputs(RESERVE, main='songs')
        donors = parts[RESERVE] | 'ListDonors' >> beam.FlatMap(donor_entries)
        return parts.songs | 'FillFromReserve' >> beam.ParDo(
            FillFromReserveFn(self.classes, self.seed), donors=pvalue.AsList(donors), policy=policy)
