"""Render: a planned song's distinct waveforms (clean targets, context mixes) and the
skeletons of its examples.

A context mix is the sum of its stems times one gain that keeps it from clipping.
Each distinct waveform is emitted once, with the windows some example needs, however
many examples share it. Augmentation and distortion plug in here, per variant.
"""
import apache_beam as beam
import numpy as np
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from schemas.ids import stable_id
from schemas.records import ExampleMeta, PlannedSong, Waveform
from schemas.taxonomy import instrument_of

EXAMPLES = 'examples'
MIX_HEADROOM = 0.99


def mix_stems(audio: dict, names) -> tuple:
    """Sums stems and scales the sum so its peak is at most MIX_HEADROOM; returns (mix, gain)."""
    mix = np.sum([audio[n] for n in names], axis=0, dtype=np.float32)
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    gain = min(1.0, MIX_HEADROOM / peak) if peak > 0 else 1.0
    return (mix * np.float32(gain)).astype(np.float32), gain


class RenderFn(beam.DoFn):
    """PlannedSong -> Waveform (main) and ExampleMeta (``examples``)."""

    def __init__(self, spec, silence_db: float, codec_name: str, weights_id: str, frame_rate: float):
        self.spec = spec
        self.silence_db = silence_db
        self.codec_name = codec_name
        self.weights_id = weights_id
        self.frame_rate = frame_rate
        self.windows_silent = Metrics.counter(self.__class__, 'windows_silent')
        self.songs_all_silent = Metrics.counter(self.__class__, 'songs_all_windows_silent')
        self.songs_too_short = Metrics.counter(self.__class__, 'songs_too_short')

    def _wave_id(self, song_id, stems, variant):
        return stable_id('waveform', song_id, sorted(stems), variant, self.spec.sample_rate_hz,
                         self.spec.chunk, self.spec.hop, self.spec.keep_partial)

    def process(self, planned: PlannedSong):
        song = planned.song
        if not self.spec.starts(song.num_samples):
            self.songs_too_short.inc()
            return
        needed = {}       # waveform id -> set of windows
        rendered = {}     # waveform id -> (audio, gain)
        kept_by_target = {}
        for target in sorted({p.target for p in planned.plans}):
            wid = self._wave_id(song.ref.song_id, [target], 0)
            kept, dropped = self.spec.non_silent(song.audio[target], self.silence_db)
            self.windows_silent.inc(dropped)
            kept_by_target[target] = kept
            if kept:
                rendered[wid] = (song.audio[target], 1.0)
                needed[wid] = set(kept)
        if not needed:
            self.songs_all_silent.inc()
            return
        for plan in planned.plans:
            kept = kept_by_target[plan.target]
            if not kept:
                continue
            cid = self._wave_id(song.ref.song_id, plan.context, plan.variant)
            if cid not in rendered:
                rendered[cid] = mix_stems(song.audio, plan.context)
            needed.setdefault(cid, set()).update(kept)
            for window in kept:
                yield pvalue.TaggedOutput(EXAMPLES, (song.ref.song_id, self._meta(song, plan, cid, window,
                                                                                   rendered[cid][1])))
        for wid in sorted(needed):
            yield Waveform(song_id=song.ref.song_id, waveform_id=wid, audio=rendered[wid][0],
                           windows=tuple(sorted(needed[wid])), sample_rate_hz=self.spec.sample_rate_hz)

    def _meta(self, song, plan, context_id, window, gain) -> ExampleMeta:
        ref = song.ref
        target_id = self._wave_id(ref.song_id, [plan.target], plan.variant)
        return ExampleMeta(
            example_id=stable_id('example', context_id, target_id, window, self.codec_name, self.weights_id),
            song_id=ref.song_id, artist=ref.artist, title=ref.title, source=ref.source, split=song.split,
            target_stem=plan.target, target_instrument=instrument_of(plan.target),
            context_stems=tuple(plan.context), assortment=plan.assortment, variant=plan.variant,
            chunk_index=window, start_seconds=round(window * self.spec.hop / self.spec.sample_rate_hz, 6),
            duration_seconds=round(self.spec.chunk / self.spec.sample_rate_hz, 6), mix_gain=round(gain, 6),
            codec=self.codec_name, codec_weights=self.weights_id, frame_rate=self.frame_rate,
            sample_rate_hz=self.spec.sample_rate_hz, context_waveform_id=context_id, target_waveform_id=target_id)


class Render(beam.PTransform):
    """Outputs ``waveforms`` (main) and ``examples`` ((song_id, ExampleMeta))."""

    def __init__(self, spec, silence_db, codec_name, weights_id, frame_rate):
        super().__init__()
        self.fn = RenderFn(spec, silence_db, codec_name, weights_id, frame_rate)

    def expand(self, planned):
        return planned | 'MixContexts' >> beam.ParDo(self.fn).with_outputs(EXAMPLES, main='waveforms')
