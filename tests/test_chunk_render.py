import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import ExamplePlan, LoadedSong, PlannedSong, SongRef
from transforms.chunk import WindowSpec
from transforms.tasks.continuation.render import EXAMPLES, RenderFn, mix_stems


def _spec(**kw):
    args = dict(chunk_seconds=1.0, hop_seconds=None, margin_seconds=0.25, sample_rate_hz=1000, hop_length=10,
                keep_partial=False)
    args.update(kw)
    return WindowSpec(**args)


def test_window_starts_partial_and_hop():
    assert _spec().starts(3500) == [0, 1000, 2000]
    assert _spec(keep_partial=True).starts(3500) == [0, 1000, 2000, 3000]
    assert _spec(hop_seconds=0.5).starts(2000) == [0, 500, 1000]
    assert _spec().starts(999) == [] and _spec(keep_partial=True).starts(999) == [0]
    with pytest.raises(ValueError, match='whole number of codec frames'):
        _spec(chunk_seconds=1.005)


def test_segments_have_one_length_per_window_count_real_margins_and_zeros_after_the_end():
    audio = np.arange(3500, dtype=np.float32)[None]
    spec = _spec(keep_partial=True)
    first, middle, last = spec.segment(audio, (0,)), spec.segment(audio, (1,)), spec.segment(audio, (3,))
    assert {s.audio.shape[-1] for s in (first, middle, last)} == {1500} == {spec.segment_samples(1)}
    assert first.offsets_frames == (0,) and first.audio[0, 1499] == 1499 and first.real_samples == 1500
    assert middle.offsets_frames == (25,) and middle.audio[0, 0] == 750
    assert last.offsets_frames == (25,) and last.real_samples == 750 and last.audio[0, -1] == 0
    assert all(s.frames == 100 for s in (first, middle, last))
    chunked = spec.chunked('s', 'w', audio, [1, 3], True)
    assert np.array_equal(chunked.window_audio[1][0], np.arange(1000, 2000))
    assert chunked.window_audio[3].shape == (1, 1000) and chunked.window_audio[3][0, -1] == 0


def test_runs_of_windows_share_one_segment_and_its_margins():
    audio = np.arange(6000, dtype=np.float32)[None]
    spec = _spec(span_windows=2)
    assert spec.spans([0, 1, 2, 4, 5]) == [(0, 1), (2,), (4, 5)]
    both = spec.segment(audio, (1, 2))
    assert both.audio.shape[-1] == spec.segment_samples(2) == 2500 and both.offsets_frames == (25, 125)
    assert both.audio[0, 0] == 750 and both.audio[0, -1] == 3249
    overlapping = _spec(hop_seconds=0.5, span_windows=3)
    assert overlapping.segment_samples(3) == 2500 and overlapping.segment(audio, (2, 3, 4)).offsets_frames == (25, 75, 125)
    with pytest.raises(ValueError, match='--encode-span-windows'):
        _spec(span_windows=0)


def test_silent_windows_are_dropped_and_counted():
    target = np.concatenate([np.zeros(1000), 0.5 * np.ones(1000), 1e-4 * np.ones(1000)]).astype(np.float32)[None]
    assert _spec().non_silent(target, -50) == ([1], 2)


def test_mix_never_clips_and_reports_gain():
    audio = {'a': np.full((1, 4), 0.8, np.float32), 'b': np.full((1, 4), 0.7, np.float32)}
    mix, gain = mix_stems(audio, ['a', 'b'])
    assert np.max(np.abs(mix)) <= 0.99 + 1e-6 and gain == pytest.approx(0.99 / 1.5)
    assert mix_stems(audio, ['b'])[1] == 1.0


def test_render_emits_each_distinct_waveform_once():
    rng = np.random.default_rng(0)
    audio = {n: (0.1 * rng.standard_normal((1, 2000))).astype(np.float32) for n in ('drums', 'bass', 'guitar')}
    ref = SongRef(song_id='s', artist='A', title='t', source='stems', input_path='p', container='zip',
                  content_sha256='0')
    song = LoadedSong(ref=ref, sample_rate_hz=1000, audio=audio, split='train')
    plans = (ExamplePlan('guitar', ('drums',), 0), ExamplePlan('guitar', ('bass', 'drums'), 1),
             ExamplePlan('bass', ('drums',), 0))
    fn = RenderFn(_spec(), -50, 'encodec_32khz', 'random:0', 100.0)
    with TestPipeline() as p:
        out = p | beam.Create([PlannedSong(song, plans)]) | beam.ParDo(fn).with_outputs(EXAMPLES, main='w')
        # targets guitar, bass + contexts {drums} (shared by both targets), {bass, drums}: 4 waveforms
        assert_that(out.w | beam.Map(lambda w: w.windows), equal_to([(0, 1)] * 4), label='waveforms')
        assert_that(out[EXAMPLES] | beam.Map(lambda kv: (kv[1].target_stem, kv[1].context_stems, kv[1].chunk_index)),
                    equal_to([('guitar', ('drums',), 0), ('guitar', ('drums',), 1),
                              ('guitar', ('bass', 'drums'), 0), ('guitar', ('bass', 'drums'), 1),
                              ('bass', ('drums',), 0), ('bass', ('drums',), 1)]), label='examples')


def test_memory_budget_flushes_contexts_early_without_losing_windows():
    rng = np.random.default_rng(1)
    audio = {n: (0.1 * rng.standard_normal((1, 3000))).astype(np.float32) for n in ('drums', 'bass', 'guitar')}
    audio['bass'][:, 1000:2000] = 0              # bass (rendered first) is silent in window 1
    ref = SongRef(song_id='s', artist='A', title='t', source='stems', input_path='p', container='zip',
                  content_sha256='0')
    song = LoadedSong(ref=ref, sample_rate_hz=1000, audio=audio, split='train')
    plans = (ExamplePlan('bass', ('drums',), 0), ExamplePlan('guitar', ('drums',), 0))

    def render(buffer_mb):
        fn = RenderFn(_spec(), -50, 'encodec_32khz', 'random:0', 100.0, buffer_mb=buffer_mb)
        return [o for o in fn.process(PlannedSong(song, plans)) if not hasattr(o, 'tag')]

    roomy, tight = render(1024), render(0)
    context_id = [w.waveform_id for w in roomy if w.windows == (0, 1, 2)][-1]
    assert [w.windows for w in roomy if w.waveform_id == context_id] == [(0, 1, 2)]
    # with no budget the drums context goes out with bass' windows, then again for guitar's missing one
    assert [w.windows for w in tight if w.waveform_id == context_id] == [(0, 2), (1,)]


def test_waveform_parts_are_merged_before_examples_are_assembled():
    from schemas.continuation import ExampleMeta
    from schemas.records import EncodedWaveform
    from transforms.tasks.continuation.assemble import AttachCodesFn
    meta = ExampleMeta(example_id='e', song_id='s', artist=None, title='t', source='stems', split='train',
                       target_stem='bass', target_instrument='bass', context_stems=('drums',), assortment=0,
                       variant=0, chunk_index=1, start_seconds=1.0, duration_seconds=1.0, mix_gain=1.0,
                       codec='c', codec_weights='w', frame_rate=100.0, sample_rate_hz=1000,
                       context_waveform_id='ctx', target_waveform_id='tgt')
    codes = lambda v: np.full((1, 2), v, np.int16)
    encoded = [EncodedWaveform('s', 'ctx', {0: codes(1)}), EncodedWaveform('s', 'ctx', {1: codes(2)}),
               EncodedWaveform('s', 'tgt', {0: codes(3), 1: codes(4)})]
    out = list(AttachCodesFn().process(('s', {'examples': [meta], 'encoded': encoded})))
    assert len(out) == 1 and out[0].context_codes[0, 0] == 2 and out[0].target_codes[0, 0] == 4


def test_target_and_context_share_one_level_gain_so_a_louder_variant_keeps_their_ratio():
    from schemas.records import AugmentParams
    rng = np.random.default_rng(2)
    audio = {n: (0.45 * rng.uniform(-1, 1, (1, 2000))).astype(np.float32) for n in ('drums', 'bass', 'guitar')}
    audio['guitar'] *= 2      # a loud target: 0.9 peak
    ref = SongRef(song_id='s', artist='A', title='t', source='stems', input_path='p', container='zip',
                  content_sha256='0')
    song = LoadedSong(ref=ref, sample_rate_hz=1000, audio=audio, split='train')
    louder = AugmentParams(gain_db=4.0)
    plans = (ExamplePlan('guitar', ('bass', 'drums'), 0), ExamplePlan('guitar', ('drums',), 1),
             ExamplePlan('guitar', ('bass', 'drums'), 0, variant=1, augmentation=louder),
             ExamplePlan('guitar', ('drums',), 1, variant=1, augmentation=louder))
    out = list(RenderFn(_spec(), -50, 'encodec_32khz', 'random:0', 100.0).process(PlannedSong(song, plans)))
    waves = {o.waveform_id: o.audio for o in out if not hasattr(o, 'tag')}
    metas = [o.value[1] for o in out if getattr(o, 'tag', None) == EXAMPLES]
    rms = lambda a: float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))   # noqa: E731
    ratios = {}
    for meta in metas:
        target, context = waves[meta.target_waveform_id], waves[meta.context_waveform_id]
        assert max(np.max(np.abs(target)), np.max(np.abs(context))) <= 0.99 + 1e-6     # nothing clips
        lift = 10 ** (4 / 20) if meta.variant else 1.0
        # the target carries the gain its contexts carry, and mix_gain says which
        np.testing.assert_allclose(target, audio['guitar'] * lift * meta.mix_gain, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(context, sum(audio[n] for n in meta.context_stems) * lift * meta.mix_gain,
                                   rtol=1e-5, atol=1e-6)
        ratios.setdefault(meta.context_stems, set()).add(round(rms(target) / rms(context), 5))
    assert {m.variant for m in metas} == {0, 1} and min(m.mix_gain for m in metas) < 1.0
    assert all(len(r) == 1 for r in ratios.values()), ratios     # +4 dB keeps target-to-context
    # one gain per augmentation: the originals share one, the +4 dB variant another
    assert len({(m.variant, m.mix_gain) for m in metas}) == 2
