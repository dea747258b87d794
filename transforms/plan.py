"""PlanExamples: which examples a song yields, decided before any audio is rendered.

For every wanted target class and every non-silent instance of it, up to
``--assortments`` distinct context assortments of 1 to ``--max-context-stems`` of the
song's other non-silent stems: single stems of the rhythm section first, then
random assortments drawn from an RNG seeded by the global seed, the song and the target.
"""
import itertools

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.ids import seeded_rng
from schemas.records import ExamplePlan, LoadedSong, PlannedSong
from schemas.taxonomy import CANONICAL_CLASSES, RHYTHM_SECTION, instrument_of

MAX_STEMS_FOR_ASSORTMENTS = 64


class PlanOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--target-stem', action='append', default=None,
                            help='Canonical class to predict; repeatable; "all" = every class present. '
                                 f'Classes: {", ".join(CANONICAL_CLASSES)}. Default: all.')
        parser.add_argument('--assortments', type=int, default=8,
                            help='Most context assortments per target instance. Default: 8.')
        parser.add_argument('--max-context-stems', type=int, default=3,
                            help='Most stems mixed into one context. Default: 3.')


def parse_targets(values) -> tuple:
    """Validates --target-stem values; () means every class."""
    targets = []
    for value in values or ['all']:
        targets.extend(v.strip().lower() for v in value.split(',') if v.strip())
    if 'all' in targets:
        return ()
    unknown = sorted(set(targets) - set(CANONICAL_CLASSES))
    if unknown:
        raise ValueError(f'--target-stem: unknown class(es) {unknown}; choose from {list(CANONICAL_CLASSES)} or all')
    return tuple(dict.fromkeys(targets))


def choose_assortments(candidates, count: int, max_stems: int, rng) -> list:
    """Up to ``count`` distinct context assortments (sorted tuples of instance names)."""
    candidates = sorted(candidates)
    chosen = [(c,) for cls in RHYTHM_SECTION for c in candidates if instrument_of(c) == cls][:count]
    pool = [combo for k in range(1, min(max_stems, len(candidates)) + 1)
            for combo in itertools.combinations(candidates, k) if combo not in chosen]
    if len(chosen) < count and pool:
        order = rng.permutation(len(pool))
        chosen.extend(pool[i] for i in order[:count - len(chosen)])
    return chosen


def plan_song(song: LoadedSong, targets: tuple, assortments: int, max_context_stems: int, seed: int):
    """The ExamplePlans of a song and, when there are none, why (else None)."""
    usable = [name for name in song.audio if name not in song.silent]
    wanted = [n for n in usable if not targets or instrument_of(n) in targets]
    if not wanted:
        return (), 'no_target'
    if len(usable) > MAX_STEMS_FOR_ASSORTMENTS:
        usable = sorted(usable)[:MAX_STEMS_FOR_ASSORTMENTS]
    plans = []
    for target in sorted(wanted):
        candidates = [n for n in usable if n != target]
        rng = seeded_rng(seed, 'assortments', song.ref.song_id, target)
        for index, context in enumerate(choose_assortments(candidates, assortments, max_context_stems, rng)):
            plans.append(ExamplePlan(target=target, context=context, assortment=index))
    return tuple(plans), (None if plans else 'no_context')


class PlanExamplesFn(beam.DoFn):
    def __init__(self, targets: tuple, assortments: int, max_context_stems: int, seed: int):
        if assortments < 1 or max_context_stems < 1:
            raise ValueError('--assortments and --max-context-stems must be at least 1')
        self.targets = targets
        self.assortments = assortments
        self.max_context_stems = max_context_stems
        self.seed = seed

    def process(self, song: LoadedSong):
        plans, why_none = plan_song(song, self.targets, self.assortments, self.max_context_stems, self.seed)
        if why_none:
            Metrics.counter(self.__class__, f'songs_{why_none}').inc()
            return
        Metrics.counter(self.__class__, 'plans_made').inc(len(plans))
        yield PlannedSong(song=song, plans=plans)


class PlanExamples(beam.PTransform):
    def __init__(self, targets, assortments=8, max_context_stems=3, seed=0):
        super().__init__()
        self.fn = PlanExamplesFn(targets, assortments, max_context_stems, seed)

    def expand(self, songs):
        return songs | 'PlanPerSong' >> beam.ParDo(self.fn)
