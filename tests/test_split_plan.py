import numpy as np
import pytest

from schemas.ids import seeded_rng
from schemas.records import LoadedSong, SongRef, artist_key
from transforms.tasks.continuation.plan import choose_assortments, parse_targets, plan_song
from transforms.split import parse_ratios, plan_splits, split_of


def test_split_is_stable_and_follows_ratios():
    ratios = parse_ratios('0.82,0.12,0.06')
    splits = [split_of(f'artist:{i}', ratios) for i in range(5000)]
    assert splits == [split_of(f'artist:{i}', ratios) for i in range(5000)]
    for name, ratio in zip(('train', 'validation', 'test'), ratios):
        assert abs(splits.count(name) / 5000 - ratio) < 0.02
    assert {split_of(f'a{i}', parse_ratios('0,1,0')) for i in range(100)} == {'validation'}
    with pytest.raises(ValueError, match='split-ratios'):
        parse_ratios('0.5,0.5')


def test_artists_group_by_normalised_name_and_keep_their_spelling():
    spellings = ['Ada Lace', 'ada lace ', 'Ada  Lace feat. Bo', 'ADA LACÉ & Bo', 'Ada Lace (ft. Cy)', 'Ａda Lace, Dee']
    assert {artist_key(a) for a in spellings} == {'ada lace'}
    refs = [SongRef(song_id=f's{i}', artist=a, title='t', source='stems', input_path='p', container='zip',
                    content_sha256='0') for i, a in enumerate(spellings)]
    assert {r.group for r in refs} == {'artist:ada lace'} and refs[2].artist == 'Ada  Lace feat. Bo'
    assert artist_key('With Confidence') == 'with confidence' and artist_key('AC/DC') == 'ac/dc'
    assert artist_key('Adam Lace') != artist_key('Ada Lace')


def test_every_split_gets_a_group_from_three_groups_deterministically():
    ratios = parse_ratios('0.82,0.12,0.06')
    # 7 songs by 6 artists, every one of them hashed into train (the case seen on real corpora).
    groups = [g for g in (f'artist:{i}' for i in range(200)) if split_of(g, ratios) == 'train'][:6]
    policy = plan_splits(groups, ratios)
    splits = {g: policy.split(SongRef(song_id='x', artist=g[7:], title='t', source='stems', input_path='p',
                                      container='zip', content_sha256='0')) for g in groups}
    assert sorted(set(splits.values())) == ['test', 'train', 'validation']
    assert list(policy.moved.values()).count('validation') == 1 and list(policy.moved.values()).count('test') == 1
    assert policy.empty == () and policy.groups == 6
    assert plan_splits(list(reversed(groups)), ratios) == policy         # order does not matter
    # Enough groups for the hash to fill every split: nothing moves.
    assert plan_splits([f'artist:{i}' for i in range(200)], ratios).moved == {}
    # Fewer than three groups: nothing moves, the empty splits are named.
    few = plan_splits(groups[:2], ratios)
    assert few.moved == {} and few.empty == ('validation', 'test')
    assert plan_splits(groups[:3], parse_ratios('1,0,0')).moved == {}     # a zero ratio stays empty


def _song(names, silent=(), split='train'):
    ref = SongRef(song_id='song1', artist='A', title='t', source='stems', input_path='p', container='zip',
                  content_sha256='0')
    return LoadedSong(ref=ref, sample_rate_hz=32000, audio={n: np.zeros((1, 10), np.float32) for n in names},
                      silent=tuple(silent), split=split)


def test_rhythm_section_first_then_distinct_random_assortments():
    candidates = ['bass', 'drums', 'keys', 'perc', 'synth', 'vocals']
    chosen = choose_assortments(candidates, 8, 3, seeded_rng(0, 'x'))
    assert chosen[:3] == [('drums',), ('bass',), ('perc',)]
    assert len(chosen) == 8 and len(set(chosen)) == 8
    assert all(1 <= len(c) <= 3 for c in chosen)
    assert chosen == choose_assortments(candidates, 8, 3, seeded_rng(0, 'x'))
    assert chosen != choose_assortments(candidates, 8, 3, seeded_rng(1, 'x'))


def test_plan_targets_instances_skips_silent_and_explains_empty():
    song = _song(['drums', 'bass', 'guitar', 'guitar#2', 'keys'], silent=['keys'])
    plans, why = plan_song(song, ('guitar',), 8, 3, seed=0)
    assert why is None
    assert {p.target for p in plans} == {'guitar', 'guitar#2'}
    assert all('keys' not in p.context and p.target not in p.context for p in plans)
    # three usable others -> at most 7 distinct assortments each
    assert len([p for p in plans if p.target == 'guitar']) == 7
    assert plan_song(song, ('keys',), 8, 3, 0) == ((), 'no_target')           # silent is never a target
    assert plan_song(_song(['guitar']), (), 8, 3, 0) == ((), 'no_context')
    assert parse_targets(['all']) == () and parse_targets(['guitar,bass']) == ('guitar', 'bass')
    with pytest.raises(ValueError, match='unknown class'):
        parse_targets(['kazoo'])


def test_evaluation_splits_stay_clean_unless_asked():
    from transforms.tasks.continuation.augment import AugmentSettings
    from transforms.tasks.continuation.distort import DistortSettings
    augment, distortion = AugmentSettings(count=2), DistortSettings(names=('eq', 'noise'), p=1.0)
    names = ['drums', 'bass', 'guitar', 'keys']
    train, _ = plan_song(_song(names), ('guitar',), 4, 3, 0, augment, distortion)
    assert any(p.variant for p in train) and all(p.distortion for p in train)
    for split in ('validation', 'test'):
        clean, _ = plan_song(_song(names, split=split), ('guitar',), 4, 3, 0, augment, distortion)
        assert len(clean) == 4 and not any(p.variant or p.augmentation or p.distortion for p in clean)
        asked, _ = plan_song(_song(names, split=split), ('guitar',), 4, 3, 0,
                             AugmentSettings(count=2, splits='all'), distortion)
        assert asked == train


def test_augment_eval_flag_reaches_the_settings_and_the_manifest(tmp_path):
    from pipelines.build import resolve_paths
    from pipelines.options import parse_args
    from transforms.tasks.continuation.augment import AugmentSettings
    from transforms.tasks.continuation.task import ContinuationTask
    for flags, expected in (([], False), (['--augment-eval'], True), (['--augment-splits=all'], True)):
        args, beam_options = parse_args([f'--input={tmp_path}', f'--output={tmp_path / "out"}',
                                         '--codec-weights=random'] + flags)
        resolve_paths(args)
        assert (AugmentSettings.from_args(args).splits == 'all') is expected
        assert ContinuationTask.from_args(args, beam_options).manifest_info()['augment_eval'] is expected
