"""AssignSplit: train/validation/test by a stable hash of the song's group (the source's group,
else the artist, else the song), or the corpus' own split with ``--split-from=source``.

The split is a function of the group alone (not of the seed), so every song of an
artist, and every example and augmentation of those songs, lands in one split, in
this run and in any later run.
"""
import dataclasses

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.ids import stable_fraction
from schemas.records import LoadedSong, SongRef

SPLITS = ('train', 'validation', 'test')


def parse_ratios(text: str) -> tuple:
    """'0.82,0.12,0.06' -> normalized (train, validation, test) ratios."""
    try:
        ratios = tuple(float(x) for x in str(text).split(','))
    except ValueError:
        raise ValueError(f'--split-ratios must be three numbers like 0.82,0.12,0.06, got {text!r}') from None
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f'--split-ratios must be three non-negative numbers with a positive sum, got {text!r}')
    total = sum(ratios)
    return tuple(r / total for r in ratios)


def split_of(group: str, ratios: tuple) -> str:
    """The split of a group: where its stable hash falls among the cumulative ratios."""
    u = stable_fraction('split', group)
    edge = 0.0
    for name, ratio in zip(SPLITS, ratios):
        edge += ratio
        if u < edge:
            return name
    return next(name for name, ratio in reversed(list(zip(SPLITS, ratios))) if ratio > 0)


# A corpus' own split folders -> ours; Slakh's omitted/ tracks (read with --include-omitted) train.
SOURCE_SPLITS = {'train': 'train', 'validation': 'validation', 'test': 'test', 'omitted': 'train'}


def song_split(ref: SongRef, ratios: tuple, split_from: str = 'hash') -> str:
    """The split of a song: its corpus' own split with ``split_from='source'`` (when the source
    gave one), else the stable hash of its group."""
    if split_from == 'source' and ref.source_split in SOURCE_SPLITS:
        return SOURCE_SPLITS[ref.source_split]
    return split_of(ref.group, ratios)


class SplitOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--split-ratios', default='0.82,0.12,0.06',
                            help='train,validation,test ratios, split by artist (song when no artist). '
                                 'Default: 0.82,0.12,0.06.')
        parser.add_argument('--split-from', default='hash', choices=['hash', 'source'],
                            help='hash: split by a stable hash of each group (--split-ratios). source: keep '
                                 'the corpus\' own splits (Slakh train/validation/test folders; MUSDB train/'
                                 'test with its 14 standard validation tracks). Default: hash.')


class AssignSplitFn(beam.DoFn):
    def __init__(self, ratios: tuple, split_from: str = 'hash'):
        self.ratios = ratios
        self.split_from = split_from

    def process(self, song: LoadedSong):
        split = song_split(song.ref, self.ratios, self.split_from)
        Metrics.counter(self.__class__, f'songs_{split}').inc()
        yield dataclasses.replace(song, split=split)


class AssignSplit(beam.PTransform):
    def __init__(self, ratios: tuple, split_from: str = 'hash'):
        super().__init__()
        self.ratios = ratios
        self.split_from = split_from

    def expand(self, songs):
        return songs | 'SplitByGroup' >> beam.ParDo(AssignSplitFn(self.ratios, self.split_from)).with_output_types(LoadedSong)
