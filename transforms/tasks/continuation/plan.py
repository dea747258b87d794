"""PlanExamples: which examples a song yields, decided before any audio is rendered.

For every wanted target class and every non-silent instance of it, up to
``--assortments`` distinct context assortments of 1 to ``--max-context-stems`` of the
song's other non-silent stems: single stems of the rhythm section first, then
random assortments drawn from an RNG seeded by the global seed, the song and the target.
"""
import dataclasses
import itertools

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.ids import seeded_rng
from schemas.records import ExamplePlan, LoadedSong, PlannedSong
from transforms.tasks.continuation.augment import AugmentSettings, draw_params
from transforms.tasks.continuation.distort import DistortSettings, draw_distortion
from schemas.taxonomy import CANONICAL_CLASSES, RHYTHM_SECTION, WHOLE_MIX, instrument_of, normalize_label

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
        parser.add_argument('--target-label', action='append', default=None,
                            help='Only targets the source itself names so (Slakh program or inst_class such '
                                 'as "Distortion Guitar", MUSDB stem, MoisesDB stemName or trackType, folder '
                                 'name); case, "_" and "-" do not matter; repeatable, combined with '
                                 '--target-stem. Default: any.')


def parse_labels(values) -> tuple:
    """--target-label values as normalised labels (repeatable; '|' separates several in one)."""
    return tuple(dict.fromkeys(normalize_label(v) for value in values or () for v in value.split('|') if v.strip()))


def has_label(song: LoadedSong, instance: str, labels: tuple) -> bool:
    """Whether the source names the stem ``instance`` by one of ``labels`` (normalised)."""
    stem = next((s for s in song.ref.stems if s.instance == instance), None)
    return stem is not None and any(normalize_label(label) in labels for label in stem.labels)


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


def with_variants(plans, song: LoadedSong, seed: int, augment: AugmentSettings, distortion: DistortSettings):
    """Adds each plan's augmented variants (parameters drawn per song, target and variant, so the
    variants of one target share their target waveform) and draws every context's distortion
    (per song, context stems, variant and augmentation, so equal context mixes stay equal)."""
    out = []
    for plan in plans:
        variants = [(0, None)] + [
            (v, draw_params(augment, seeded_rng(seed, 'augment', song.ref.song_id, plan.target, v)))
            for v in range(1, augment.variants_for(song.split) + 1)]
        for variant, params in variants:
            steps = () if not augment.alters(song.split) else draw_distortion(distortion, seeded_rng(
                seed, 'distort', song.ref.song_id, sorted(plan.context), variant,
                None if params is None else params.to_dict()))
            out.append(dataclasses.replace(plan, variant=variant, augmentation=params, distortion=steps))
    return tuple(out)


def plan_song(song: LoadedSong, targets: tuple, assortments: int, max_context_stems: int, seed: int,
              augment: AugmentSettings = AugmentSettings(), distortion: DistortSettings = DistortSettings(),
              labels: tuple = ()):
    """The ExamplePlans of a song and, when there are none, why (else None). A whole mix (the one
    stem of a folder song) is planned with an empty context."""
    usable = [name for name in song.audio if name not in song.silent]
    wanted = [n for n in usable if (not targets or instrument_of(n) in targets)
              and (not labels or has_label(song, n, labels))]
    if not wanted:
        return (), 'no_target'
    if len(usable) > MAX_STEMS_FOR_ASSORTMENTS:
        usable = sorted(usable)[:MAX_STEMS_FOR_ASSORTMENTS]
    plans = []
    for target in sorted(wanted):
        candidates = [n for n in usable if n != target]
        if not candidates and instrument_of(target) == WHOLE_MIX:
            plans.append(ExamplePlan(target=target, context=(), assortment=0))
        rng = seeded_rng(seed, 'assortments', song.ref.song_id, target)
        for index, context in enumerate(choose_assortments(candidates, assortments, max_context_stems, rng)):
            plans.append(ExamplePlan(target=target, context=context, assortment=index))
    return with_variants(plans, song, seed, augment, distortion), (None if plans else 'no_context')


class PlanExamplesFn(beam.DoFn):
    def __init__(self, targets: tuple, assortments: int, max_context_stems: int, seed: int,
                 augment: AugmentSettings = AugmentSettings(), distortion: DistortSettings = DistortSettings(),
                 labels: tuple = ()):
        if assortments < 1 or max_context_stems < 1:
            raise ValueError('--assortments and --max-context-stems must be at least 1')
        self.targets = targets
        self.assortments = assortments
        self.max_context_stems = max_context_stems
        self.seed = seed
        self.augment = augment
        self.distortion = distortion
        self.labels = labels

    def process(self, song: LoadedSong):
        plans, why_none = plan_song(song, self.targets, self.assortments, self.max_context_stems, self.seed,
                                    self.augment, self.distortion, self.labels)
        if why_none:
            Metrics.counter(self.__class__, f'songs_{why_none}').inc()
            return
        Metrics.counter(self.__class__, 'plans_made').inc(len(plans))
        Metrics.counter(self.__class__, 'plans_augmented').inc(sum(1 for p in plans if p.variant))
        Metrics.counter(self.__class__, 'plans_distorted').inc(sum(1 for p in plans if p.distortion))
        yield PlannedSong(song=song, plans=plans)


class PlanExamples(beam.PTransform):
    def __init__(self, targets, assortments=8, max_context_stems=3, seed=0, augment=AugmentSettings(),
                 distortion=DistortSettings(), labels=()):
        super().__init__()
        self.fn = PlanExamplesFn(targets, assortments, max_context_stems, seed, augment, distortion, labels)

    def expand(self, songs):
        return songs | 'PlanPerSong' >> beam.ParDo(self.fn).with_output_types(PlannedSong)
