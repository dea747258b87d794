"""PlanSplits and AssignSplit: train/validation/test by a stable hash of the song's group (the
source's group, else the normalised artist, else the song), or the corpus' own split with
``--split-from=source``.

The split is a function of the group (not of the seed), so every song of an artist, and every
example and augmentation of those songs, lands in one split. One correction needs the whole
corpus: when the hash leaves a split with a positive ratio empty and there are at least three
groups, PlanSplits moves one group into it (the one with the lowest stable hash among the
groups of the split holding the most), so a small corpus still gets a validation and a test
set. The moves are a function of the set of groups; a larger corpus whose hash fills every
split moves none. Streaming builds, which never see the whole corpus, keep the hash alone.
"""
import dataclasses
from dataclasses import dataclass, field

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
    return SplitPolicy(ratios, split_from).split(ref)


MIN_GROUPS_FOR_EVERY_SPLIT = 3


@dataclass(frozen=True)
class SplitPolicy:
    """How songs are split: the ratios, where splits come from, and what PlanSplits found over the
    corpus: the groups it moved (group -> split) so that no split with a positive ratio is empty,
    how many groups it split by hash, and the splits left empty all the same (too few groups)."""
    ratios: tuple
    split_from: str = 'hash'
    moved: dict = field(default_factory=dict)
    groups: int = 0
    empty: tuple = ()

    def split(self, ref: SongRef) -> str:
        if self.split_from == 'source' and ref.source_split in SOURCE_SPLITS:
            return SOURCE_SPLITS[ref.source_split]
        return self.moved.get(ref.group) or split_of(ref.group, self.ratios)


def _empty_splits(assigned: dict, ratios: tuple) -> list:
    taken = set(assigned.values())
    return [name for name, ratio in zip(SPLITS, ratios) if ratio > 0 and name not in taken]


def plan_splits(groups, ratios: tuple, split_from: str = 'hash') -> SplitPolicy:
    """The policy for a corpus whose hash-split groups are ``groups``: every split with a positive
    ratio gets at least one group when there are at least MIN_GROUPS_FOR_EVERY_SPLIT."""
    groups = sorted(set(groups))
    assigned = {g: split_of(g, ratios) for g in groups}
    moved = {}
    if len(groups) >= MIN_GROUPS_FOR_EVERY_SPLIT:
        for split in _empty_splits(assigned, ratios):
            counts = {name: sum(1 for v in assigned.values() if v == name) for name in SPLITS}
            source = max(SPLITS, key=lambda name: (counts[name], -SPLITS.index(name)))
            if counts[source] < 2:
                break
            group = min((g for g, v in assigned.items() if v == source),
                        key=lambda g: stable_fraction('split-fill', split, g))
            assigned[group] = moved[group] = split
    return SplitPolicy(ratios, split_from, moved, len(groups), tuple(_empty_splits(assigned, ratios)) if groups else ())


class SplitOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--split-ratios', default='0.82,0.12,0.06',
                            help='train,validation,test ratios, split by artist (its normalised name; the song '
                                 'when no artist). With at least 3 groups every split with a positive ratio '
                                 'gets at least one. Default: 0.82,0.12,0.06.')
        parser.add_argument('--split-from', default='hash', choices=['hash', 'source'],
                            help='hash: split by a stable hash of each group (--split-ratios). source: keep '
                                 'the corpus\' own splits (Slakh train/validation/test folders; MUSDB train/'
                                 'test with its 14 standard validation tracks). Default: hash.')


def _hashed_group(ref: SongRef, split_from: str):
    """The group of a song split by hash (None when the corpus gives its split)."""
    if split_from == 'source' and ref.source_split in SOURCE_SPLITS:
        return None
    return ref.group


def _policy(groups, ratios, split_from):
    policy = plan_splits([g for g in groups if g is not None], ratios, split_from)
    Metrics.counter('PlanSplits', 'split_groups').inc(policy.groups)
    for split in policy.moved.values():
        Metrics.counter('PlanSplits', f'groups_moved_to_{split}').inc()
    for split in policy.empty:
        Metrics.counter('PlanSplits', f'split_empty_{split}').inc()
    return policy


class PlanSplits(beam.PTransform):
    """SongRef -> one SplitPolicy (a singleton, for side inputs). With ``whole_corpus=False``
    (streaming) the policy is the hash alone and reads no song."""

    def __init__(self, ratios: tuple, split_from: str = 'hash', whole_corpus: bool = True, exclude=None):
        """``exclude``: groups left out of the count (the reserve of --fill-missing=reserve)."""
        super().__init__()
        self.ratios, self.split_from, self.whole_corpus, self.exclude = ratios, split_from, whole_corpus, exclude

    def expand(self, refs):
        if not self.whole_corpus:
            return refs.pipeline | 'HashOnly' >> beam.Create([SplitPolicy(self.ratios, self.split_from)])
        exclude = self.exclude or (lambda group: False)
        return (refs
                | 'HashedGroup' >> beam.Map(_hashed_group, self.split_from)
                | 'KeptGroups' >> beam.Filter(lambda g: g is not None and not exclude(g))
                | 'DistinctGroups' >> beam.Distinct()
                | 'AllGroups' >> beam.combiners.ToList()
                | 'Policy' >> beam.Map(_policy, self.ratios, self.split_from))


class AssignSplitFn(beam.DoFn):
    def process(self, song: LoadedSong, policy: SplitPolicy):
        split = policy.split(song.ref)
        Metrics.counter(self.__class__, f'songs_{split}').inc()
        yield dataclasses.replace(song, split=split)


class AssignSplit(beam.PTransform):
    """LoadedSong -> LoadedSong with its split, by the PlanSplits policy (a singleton PCollection)."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def expand(self, songs):
        return songs | 'SplitByGroup' >> beam.ParDo(
            AssignSplitFn(), beam.pvalue.AsSingleton(self.policy)).with_output_types(LoadedSong)
