"""Render: a planned song's distinct waveforms (targets, context mixes) and the skeletons of
its examples.

A target is its stem, augmented for variants. A context is the sum of its stems, each augmented
like its target, then distorted. Each stem's pitch/tempo variant is computed once per variant
and shared by its target and every context that holds the stem (``StemVariants``). Target and context are level-handled alike: the waveforms that
share an augmentation (the originals of every target; each variant's target and its contexts)
are scaled by one gain, the one that keeps the loudest of them from clipping (recorded as
``mix_gain``), so a +4 dB variant keeps its target-to-context ratio. Each
distinct waveform is emitted once, with the windows some example needs, however many
examples share it, and as soon as the last plan that uses it has been rendered, so a song
never holds more than the waveforms still waiting for a window list.
"""
import json
import time

import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.metrics import Metrics

from schemas.audio_io import gain_for_peak, headroom_gain, peak_of, scaled, sum_audio
from schemas.ids import stable_id
from schemas.continuation import ExampleMeta
from schemas.records import PlannedSong, Waveform
from schemas.shards import plan_document, write_atomic
from schemas.taxonomy import instrument_of
from transforms.tasks.continuation.augment import augment
from transforms.tasks.continuation.distort import distort
from transforms.failures import FAILED, contained, in_stage

EXAMPLES = 'examples'
# Bump when the audio Render makes of the same plan changes (part of the run's fingerprint, so
# --resume does not mix waveforms of two versions). 2: each stem augmented, then summed.
RENDER_VERSION = 2


class RenderOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--render-buffer-mb', type=float, default=1024,
                            help='Most context audio (MiB) a song holds while waiting for all the targets '
                                 'that share it; past it, contexts are emitted early (a shared context may '
                                 'then be encoded in parts). Default: 1024.')


def mix_stems(audio: dict, names) -> tuple:
    """Sums stems and scales the sum so its peak is at most MIX_HEADROOM; returns (mix, gain)."""
    mix = sum_audio(audio[n] for n in names)
    gain = headroom_gain(mix)
    return (mix * np.float32(gain)).astype(np.float32), gain


class StemVariants:
    """Each stem's augmented variant, computed once per (stem, augmentation) and shared by the
    target and every context that holds the stem; a level group's (its variant) at a time."""

    def __init__(self, rate: int, counter):
        self.rate, self.counter, self.audio, self.level = rate, counter, {}, None

    def for_level(self, level) -> 'StemVariants':
        """Drops the variants of the previous level group when the level changes."""
        if level != self.level:
            self.audio, self.level = {}, level
        return self

    def get(self, song, name: str, plan) -> np.ndarray:
        key = (name, plan.augmentation)
        if key not in self.audio:
            with in_stage('augment', song.ref.song_id):
                self.audio[key] = augment(song.audio[name], self.rate, plan.augmentation)
            self.counter.inc(plan.augmentation is not None)
        return self.audio[key]


class RenderFn(beam.DoFn):
    """PlannedSong -> Waveform (main) and (song_id, ExampleMeta) (``examples``)."""

    def __init__(self, spec, silence_db: float, codec_name: str, weights_id: str, frame_rate: float,
                 precision: str = 'fp32', plans_root: str = None, buffer_mb: float = 1024):
        self.spec = spec
        self.buffer_bytes = buffer_mb * 2**20   # contexts held while waiting for their last user
        self.plans_root = plans_root    # where each song's waveforms and windows are recorded
        # What shapes the codes goes into the example id; fp32 adds nothing.
        self.codec_identity = (codec_name, weights_id) + (() if precision == 'fp32' else (precision,))
        self.silence_db = silence_db
        self.codec_name = codec_name
        self.weights_id = weights_id
        self.frame_rate = frame_rate
        self.windows_silent = Metrics.counter(self.__class__, 'windows_silent')
        self.songs_all_silent = Metrics.counter(self.__class__, 'songs_all_windows_silent')
        self.songs_too_short = Metrics.counter(self.__class__, 'songs_too_short')
        self.variants_too_short = Metrics.counter(self.__class__, 'variants_too_short')
        self.contexts_flushed_early = Metrics.counter(self.__class__, 'contexts_flushed_early')
        self.stems_augmented = Metrics.counter(self.__class__, 'stems_augmented')   # pitch/tempo/gain variants made
        self.render_ms = Metrics.counter(self.__class__, 'render_ms')   # mixing, augmenting, distorting

    def _wave_id(self, song_id, stems, plan, distortion=()):
        return stable_id('waveform', song_id, sorted(stems), plan.variant,
                         None if plan.augmentation is None else plan.augmentation.to_dict(),
                         [d.to_dict() for d in distortion], self.spec.sample_rate_hz, self.spec.chunk,
                         self.spec.hop, self.spec.keep_partial)

    def _mix(self, song, plan, variants):
        """A context's augmented stems summed, before the level gain and distortion (no context
        stems, a whole-mix song: a silent context as long as the target's variant)."""
        return sum_audio((variants.get(song, n, plan) for n in plan.context), variants.get(song, plan.target, plan))

    def _target(self, song, plan, variants):
        return variants.get(song, plan.target, plan)

    def _level(self, song, groups, held, variants) -> float:
        """One gain for the targets and contexts that share an augmentation (``groups``: their
        plans): the gain that keeps the loudest of them at MIX_HEADROOM, so every target keeps its
        level relative to its contexts. Audio computed here is kept in ``held`` (keyed by the
        waveform id before distortion) for rendering, up to the memory budget."""
        song_id, peak, held_bytes = song.ref.song_id, 0.0, 0
        for plans in groups:
            for wave_id, make in [(self._wave_id(song_id, [plans[0].target], plans[0]),
                                   lambda p=plans[0]: self._target(song, p, variants))] + [
                    (self._wave_id(song_id, plan.context, plan), lambda p=plan: self._mix(song, p, variants))
                    for plan in plans]:
                if wave_id in held:
                    continue
                start = time.perf_counter()
                audio = make()
                self.render_ms.inc(int(1000 * (time.perf_counter() - start)))
                peak = max(peak, peak_of(audio))
                held[wave_id] = audio if held_bytes + audio.nbytes <= self.buffer_bytes else None
                held_bytes += audio.nbytes if held[wave_id] is not None else 0
        return gain_for_peak(peak)

    def _held(self, held, wave_id, make):
        """Audio the level pass kept, handed over once (else computed again)."""
        audio = held.pop(wave_id, None)
        return make() if audio is None else audio

    def _context(self, song, plan, held, gain, variants):
        mix = self._held(held, self._wave_id(song.ref.song_id, plan.context, plan),
                         lambda: self._mix(song, plan, variants))
        mix = scaled(mix, gain)
        with in_stage('distort', song.ref.song_id):
            return distort(mix, self.spec.sample_rate_hz, plan.distortion)

    @contained('render', lambda planned: planned.song.ref.song_id)
    def process(self, planned: PlannedSong):
        windows, examples = {}, 0
        for waveform in self._render(planned):
            if isinstance(waveform, Waveform):
                windows[waveform.waveform_id] = windows.get(waveform.waveform_id, 0) + len(waveform.windows)
            else:
                examples += 1
            yield waveform
        if self.plans_root:   # every song rendered, with or without windows (the progress line counts it)
            write_atomic(FileSystems.join(self.plans_root, f'{planned.song.ref.song_id}.json'),
                         plan_document(windows, examples))

    def _render(self, planned: PlannedSong):
        song = planned.song
        if not self.spec.starts(song.num_samples):
            self.songs_too_short.inc()
            return
        # Plans grouped by (target, variant); originals first. A context's last user is known
        # from the plan alone, so it is emitted (and dropped) right after that group.
        groups = {}
        for plan in planned.plans:
            groups.setdefault((plan.variant, plan.target), []).append(plan)
        last_user = {}
        for key, plans in groups.items():
            for plan in plans:
                last_user[self._wave_id(song.ref.song_id, plan.context, plan, plan.distortion)] = key
        # Waveforms sharing an augmentation (every original; a variant's target and contexts) share
        # one level gain, computed over all of them before the first is emitted.
        by_level = {}
        for key in sorted(groups):
            by_level.setdefault(self._level_key(groups[key][0]), []).append(key)
        pending, emitted, gains, held, emitted_any = {}, {}, {}, {}, False
        stem_variants = StemVariants(self.spec.sample_rate_hz, self.stems_augmented)
        for key in sorted(groups):
            plans = groups[key]
            level = self._level_key(plans[0])
            variants = stem_variants.for_level(level)
            if level not in gains:
                held = {}
                gains[level] = self._level(song, [groups[k] for k in by_level[level]], held, variants)
            gain = gains[level]
            target_id = self._wave_id(song.ref.song_id, [plans[0].target], plans[0])
            start = time.perf_counter()
            target = self._held(held, target_id, lambda: self._target(song, plans[0], variants))
            self.render_ms.inc(int(1000 * (time.perf_counter() - start)))
            kept, dropped = self.spec.non_silent(target, self.silence_db)
            self.windows_silent.inc(dropped)
            if not self.spec.starts(target.shape[-1]):
                self.variants_too_short.inc()
            if kept:
                emitted_any = True
                yield self._waveform(song, target_id, scaled(target, gain), kept)
            for plan in plans:
                context_id = self._wave_id(song.ref.song_id, plan.context, plan, plan.distortion)
                missing = set(kept) - emitted.get(context_id, set())
                if missing and context_id not in pending:
                    start = time.perf_counter()
                    pending[context_id] = (self._context(song, plan, held, gain, variants), set())
                    self.render_ms.inc(int(1000 * (time.perf_counter() - start)))
                if missing:
                    pending[context_id][1].update(missing)
                for window in kept:
                    yield pvalue.TaggedOutput(EXAMPLES, (song.ref.song_id, self._meta(
                        song, plan, context_id, target_id, window, gain)))
                if context_id in pending and last_user[context_id] == key:
                    yield from self._flush(song, pending, emitted, [context_id])
                if sum(a.nbytes for a, _ in pending.values()) > self.buffer_bytes:
                    self.contexts_flushed_early.inc(len(pending))
                    yield from self._flush(song, pending, emitted, sorted(pending))
        if not emitted_any:
            self.songs_all_silent.inc()

    @staticmethod
    def _level_key(plan):
        return plan.variant, None if plan.augmentation is None else json.dumps(plan.augmentation.to_dict(),
                                                                                sort_keys=True)

    def _flush(self, song, pending, emitted, context_ids):
        """Emits pending contexts with the windows gathered so far. A context flushed before its
        last user (memory budget) is rendered again later only for windows still missing."""
        for context_id in context_ids:
            audio, windows = pending.pop(context_id)
            emitted.setdefault(context_id, set()).update(windows)
            yield self._waveform(song, context_id, audio, windows)

    def _waveform(self, song, waveform_id, audio, windows) -> Waveform:
        return Waveform(song_id=song.ref.song_id, waveform_id=waveform_id, audio=audio,
                        windows=tuple(sorted(windows)), sample_rate_hz=self.spec.sample_rate_hz)

    def _meta(self, song, plan, context_id, target_id, window, gain) -> ExampleMeta:
        ref = song.ref
        return ExampleMeta(
            example_id=stable_id('example', context_id, target_id, window, *self.codec_identity),
            song_id=ref.song_id, artist=ref.artist, title=ref.title, source=ref.source, split=song.split,
            target_stem=plan.target, target_instrument=instrument_of(plan.target),
            context_stems=tuple(plan.context), assortment=plan.assortment, variant=plan.variant,
            chunk_index=window, start_seconds=round(window * self.spec.hop / self.spec.sample_rate_hz, 6),
            duration_seconds=round(self.spec.chunk / self.spec.sample_rate_hz, 6), mix_gain=round(gain, 6),
            codec=self.codec_name, codec_weights=self.weights_id, frame_rate=self.frame_rate,
            sample_rate_hz=self.spec.sample_rate_hz, context_waveform_id=context_id, target_waveform_id=target_id,
            augmentation=None if plan.augmentation is None else plan.augmentation.to_dict(),
            distortion=tuple(d.to_dict() for d in plan.distortion), **ref.example_fields(plan.target, plan.context))


class Render(beam.PTransform):
    """Outputs ``waveforms`` (main), ``examples`` ((song_id, ExampleMeta)) and ``failed``."""

    def __init__(self, spec, silence_db, codec_name, weights_id, frame_rate, precision='fp32', plans_root=None,
                 buffer_mb=1024):
        super().__init__()
        self.fn = RenderFn(spec, silence_db, codec_name, weights_id, frame_rate, precision, plans_root, buffer_mb)

    def expand(self, planned):
        return planned | 'MixContexts' >> beam.ParDo(self.fn).with_output_types(Waveform).with_outputs(
            EXAMPLES, FAILED, main='waveforms')
