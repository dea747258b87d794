import numpy as np
import pytest

from schemas.ids import seeded_rng
from schemas.records import AugmentParams, DistortionStep, ExamplePlan
from transforms.tasks.continuation.augment import AugmentSettings, augment, augmented_length, draw_params, parse_range
from transforms.tasks.continuation.distort import DISTORTIONS, DistortSettings, distort, draw_distortion, parse_distortions
from transforms.synth import synth_mix

RATE = 32000


def _tone(hz=440.0, seconds=10.0, channels=1):
    t = np.arange(int(seconds * RATE)) / RATE
    return np.repeat((0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None], channels, axis=0)


def _pitch_hz(audio):
    spectrum = np.abs(np.fft.rfft(audio[0] * np.hanning(audio.shape[-1])))
    k = int(np.argmax(spectrum))
    # parabolic interpolation around the peak
    a, b, c = np.log(spectrum[k - 1:k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / audio.shape[-1]


def test_pitch_tempo_and_gain_are_exact():
    shifted = augment(_tone(), RATE, AugmentParams(pitch_semitones=2.0))
    assert _pitch_hz(shifted) == pytest.approx(493.88, rel=0.01)
    faster = augment(_tone(), RATE, AugmentParams(tempo=1.25))
    assert abs(faster.shape[-1] - 8 * RATE) <= 640 and _pitch_hz(faster) == pytest.approx(440, rel=0.01)
    quieter = augment(_tone(), RATE, AugmentParams(gain_db=-6.0))
    assert np.abs(quieter).max() / 0.5 == pytest.approx(10 ** (-6 / 20), rel=0.01)


def test_context_and_target_of_a_variant_stay_aligned():
    params = AugmentParams(pitch_semitones=-1.3, tempo=0.87, gain_db=2.0)
    target, context = _tone(220), synth_mix(2, 10.0, RATE)
    a, b = augment(target, RATE, params), augment(context, RATE, params)
    assert a.shape == b.shape == (1, augmented_length(target.shape[-1], params))
    stereo = augment(_tone(channels=2), RATE, params)
    assert stereo.shape == (2, a.shape[-1])


def test_augmentation_draws_are_seeded_and_ranged():
    settings = AugmentSettings(count=4, pitch_semitones=(-2, 2), tempo=(0.8, 1.25), gain_db=(-4, 4))
    draws = [draw_params(settings, seeded_rng(0, 'song', 'guitar', v)) for v in range(1, 50)]
    assert draws == [draw_params(settings, seeded_rng(0, 'song', 'guitar', v)) for v in range(1, 50)]
    assert all(-2 <= d.pitch_semitones <= 2 and 0.8 <= d.tempo <= 1.25 and -4 <= d.gain_db <= 4 for d in draws)
    assert len({d.tempo for d in draws}) > 40
    assert parse_range('--pitch-semitones', '0', 0.0) == (0.0, 0.0)
    assert settings.variants_for('train') == 4 and settings.variants_for('test') == 0
    with pytest.raises(ValueError, match='--tempo-range'):
        parse_range('--tempo-range', '1.2,0.8', 1.0)


@pytest.mark.parametrize('name', sorted(DISTORTIONS))
def test_each_distortion_changes_the_context_and_keeps_its_shape(name):
    audio = np.stack([synth_mix(4, 3.0, RATE)[0], synth_mix(5, 3.0, RATE)[0]])
    step = DistortionStep(name=name, params=tuple(sorted(DISTORTIONS[name][0](seeded_rng(0, name)).items())))
    out = distort(audio, RATE, [step])
    assert out.shape == audio.shape and out.dtype == np.float32
    assert np.abs(out - audio).mean() > 1e-4
    assert np.array_equal(out, distort(audio, RATE, [step])), 'the same parameters give the same audio'


def test_lossy_round_trip_stays_aligned():
    audio = synth_mix(6, 3.0, RATE)
    for codec in ('mp3', 'opus'):
        out = distort(audio, RATE, [DistortionStep('lossy', (('codec', codec), ('kbps', 96)))])
        lags = np.arange(-400, 401)
        corr = [np.dot(audio[0, 2000:-2000], np.roll(out[0], -lag)[2000:-2000]) for lag in lags]
        assert abs(lags[int(np.argmax(corr))]) <= 2, codec


def test_noise_snr_is_as_drawn():
    audio = synth_mix(7, 5.0, RATE)
    out = distort(audio, RATE, [DistortionStep('noise', (('seed', 1), ('snr_db', 20.0)))])
    snr = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) / np.mean((out - audio).astype(np.float64) ** 2))
    assert snr == pytest.approx(20, abs=1)


def test_distortion_draws():
    settings = DistortSettings(parse_distortions('noise,reverb,eq'), 0.5, 2)
    draws = [draw_distortion(settings, seeded_rng(0, 'ctx', i)) for i in range(400)]
    assert 0.4 < sum(1 for d in draws if d) / 400 < 0.6
    assert all(len(d) <= 2 and len({s.name for s in d}) == len(d) for d in draws)
    assert draw_distortion(DistortSettings(settings.names, 0.0, 2), seeded_rng(0, 'x')) == ()
    with pytest.raises(ValueError, match='--distort-p'):
        DistortSettings(settings.names, 1.5, 2)
    with pytest.raises(ValueError, match='unknown effect'):
        parse_distortions('wah')
    steps = tuple(DistortionStep(n, tuple(sorted(DISTORTIONS[n][0](seeded_rng(1, n)).items()))) for n in DISTORTIONS)
    plan = ExamplePlan('guitar', ('drums',), 0, 1, AugmentParams(1.0, 1.1, -2.0), steps)
    assert ExamplePlan.from_dict(plan.to_dict()) == plan


def _planned(split='train', augment=None, distortion=None):
    from schemas.records import LoadedSong, PlannedSong, SongRef
    from transforms.tasks.continuation.plan import plan_song
    audio = {n: synth_mix(i, 3.0, RATE) for i, n in enumerate(('drums', 'bass', 'guitar'))}
    ref = SongRef(song_id='s', artist='A', title='t', source='stems', input_path='p', container='zip',
                  content_sha256='0')
    song = LoadedSong(ref=ref, sample_rate_hz=RATE, audio=audio, split=split)
    plans, _ = plan_song(song, ('guitar',), 2, 2, 0, augment or AugmentSettings(),
                         distortion or DistortSettings())
    return PlannedSong(song, plans)


def _render(planned):
    from transforms.chunk import WindowSpec
    from transforms.tasks.continuation.render import EXAMPLES, RenderFn
    fn = RenderFn(WindowSpec(1.28, None, 0.32, RATE, 640, False), -50, 'encodec_32khz', 'random:0', 50.0)
    waves, metas = {}, []
    for out in fn.process(planned):
        if getattr(out, 'tag', None) == EXAMPLES:
            metas.append(out.value[1])
        else:
            waves[out.waveform_id] = out
    return waves, metas


def test_plans_augment_train_only_unless_all():
    settings = AugmentSettings(count=2, pitch_semitones=(-2, 2), tempo=(0.9, 1.1), gain_db=(-4, 4))
    assert {p.variant for p in _planned('train', settings).plans} == {0, 1, 2}
    assert {p.variant for p in _planned('test', settings).plans} == {0}
    all_splits = AugmentSettings(**dict(settings.__dict__, splits='all'))
    assert {p.variant for p in _planned('validation', all_splits).plans} == {0, 1, 2}


def test_render_applies_what_the_metadata_says_and_keeps_targets_clean():
    augment_settings = AugmentSettings(count=1, pitch_semitones=(-2, 2), tempo=(0.9, 1.1), gain_db=(-4, 4))
    clean = _planned(augment=augment_settings)
    noisy = _planned(augment=augment_settings, distortion=DistortSettings(('noise', 'eq'), 1.0, 2))
    clean_waves, clean_metas = _render(clean)
    noisy_waves, noisy_metas = _render(noisy)
    again_waves, again_metas = _render(noisy)
    assert again_metas == noisy_metas
    assert all(np.array_equal(again_waves[k].audio, w.audio) for k, w in noisy_waves.items())
    assert all(m.distortion for m in noisy_metas) and not any(m.distortion for m in clean_metas)
    for noisy_meta in noisy_metas:
        clean_meta = next(m for m in clean_metas if (m.target_stem, m.context_stems, m.variant, m.chunk_index) ==
                          (noisy_meta.target_stem, noisy_meta.context_stems, noisy_meta.variant,
                           noisy_meta.chunk_index))
        # the target is bit-identical with and without distortion; the context is not
        assert noisy_meta.target_waveform_id == clean_meta.target_waveform_id
        assert np.array_equal(noisy_waves[noisy_meta.target_waveform_id].audio,
                              clean_waves[clean_meta.target_waveform_id].audio)
        assert not np.array_equal(noisy_waves[noisy_meta.context_waveform_id].audio,
                                  clean_waves[clean_meta.context_waveform_id].audio)
        plan = next(p for p in noisy.plans if (p.target, p.context, p.variant) ==
                    (noisy_meta.target_stem, noisy_meta.context_stems, noisy_meta.variant))
        assert noisy_meta.augmentation == (None if plan.augmentation is None else plan.augmentation.to_dict())
        assert list(noisy_meta.distortion) == [d.to_dict() for d in plan.distortion]
    for meta in noisy_metas:   # context and target of a variant have the same length
        assert noisy_waves[meta.context_waveform_id].audio.shape == noisy_waves[meta.target_waveform_id].audio.shape


def test_each_stem_is_augmented_once_per_variant_and_shared_by_its_target_and_contexts(monkeypatch):
    import transforms.tasks.continuation.render as render
    from schemas.records import LoadedSong, PlannedSong, SongRef
    from transforms.tasks.continuation.plan import plan_song
    calls = []
    monkeypatch.setattr(render, 'augment', lambda audio, rate, params: calls.append(params) or augment(audio, rate, params))
    names = ('drums', 'bass', 'keys', 'strings', 'guitar')
    audio = {n: synth_mix(20 + i, 3.0, RATE) * 0.3 for i, n in enumerate(names)}
    ref = SongRef(song_id='s', artist='A', title='t', source='stems', input_path='p', container='zip',
                  content_sha256='0')
    song = LoadedSong(ref=ref, sample_rate_hz=RATE, audio=audio, split='train')
    settings = AugmentSettings(count=2, pitch_semitones=(-2, 2), tempo=(0.9, 1.1), gain_db=(-4, 4))
    plans, _ = plan_song(song, ('guitar',), 6, 3, 0, settings, DistortSettings())
    waves, metas = _render(PlannedSong(song, plans))
    augmented = [p for p in plans if p.augmentation is not None]
    per_stem = {(n, p.augmentation) for p in augmented for n in p.context + (p.target,)}
    per_context = {(p.context, p.augmentation) for p in augmented} | {(p.target, p.augmentation) for p in augmented}
    made = [c for c in calls if c is not None]
    assert len(made) == len(per_stem) == 10 and len(per_context) == 14      # 2 variants x (4 stems + target)
    for meta in metas:
        if meta.augmentation is None:
            continue
        params = AugmentParams(**meta.augmentation)
        expected = sum(augment(audio[n], RATE, params) for n in meta.context_stems) * np.float32(meta.mix_gain)
        assert np.allclose(waves[meta.context_waveform_id].audio, expected, atol=1e-6)
        target = augment(audio['guitar'], RATE, params) * np.float32(meta.mix_gain)
        assert np.allclose(waves[meta.target_waveform_id].audio, target, atol=1e-6)
