import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.audio_io import rms_dbfs
from schemas.records import SongRef, StemRef
from transforms.fill import FillMissing, fit_donor, is_reserve_group, reference_level
from transforms.split import PlanSplits, plan_splits

RATIOS = (0.6, 0.2, 0.2)
CLASSES = ('guitar', 'strings', 'bass')


def _song(i, classes, split):
    stems = tuple(StemRef(instance=c, instrument=c, member=f'/c/Track{i:05d}/stems/S{k:02d}.flac', label=c.title())
                  for k, c in enumerate(classes))
    return SongRef(song_id=f'id{i:03d}', artist=None, title=f'Track{i:05d}', source='slakh',
                   input_path=f'/c/Track{i:05d}', container='files', content_sha256='0', stems=stems,
                   source_split=split, group_key=f'lmd:{i}')


# Every third song lacks guitar, every fourth strings, in every split.
SONGS = [_song(i, [c for c in ('drums', 'bass', 'guitar', 'strings')
                   if not (c == 'guitar' and i % 3 == 0) and not (c == 'strings' and i % 4 == 0)], split)
         for i, split in enumerate(['train'] * 40 + ['validation'] * 12 + ['test'] * 12)]


def _fill(pipeline, songs, mode, split_from='hash', fraction=0.3):
    songs = pipeline | beam.Create(songs)
    policy = songs | PlanSplits(RATIOS, split_from, exclude=lambda g: is_reserve_group(g, fraction))
    return songs | FillMissing(mode, CLASSES, fraction, policy, seed=0)


@pytest.mark.parametrize('split_from', ['source', 'hash'])
def test_fills_exactly_the_missing_classes_from_the_reserve_of_the_songs_own_split(split_from):
    policy = plan_splits([s.group for s in SONGS if not is_reserve_group(s.group, 0.3)], RATIOS, split_from)
    split = {s.title: policy.split(s) for s in SONGS}
    reserve = {s.title for s in SONGS if is_reserve_group(s.group, 0.3)}
    assert {split[t] for t in reserve} == {'train', 'validation', 'test'}    # a reserve in every split
    have_class = {(split[s.title], x.instrument) for s in SONGS if s.title in reserve for x in s.stems}
    expected = {}
    for song in SONGS:
        if song.title not in reserve:
            have = {x.instrument for x in song.stems}
            expected[song.title] = sorted(c for c in CLASSES if c not in have and (split[song.title], c) in have_class)

    def check(song):
        added = [s for s in song.stems if s.donor]
        return (song.title, sorted(s.instrument for s in added),
                all(s.member.startswith(f'/c/{s.donor.split("/")[0]}/') for s in added),
                all(s.donor.split('/')[0] in reserve and split[s.donor.split('/')[0]] == split[song.title]
                    and s.donor_split == split[song.title] for s in added),
                all(s.donor_song_id == f'id{int(s.donor.split("/")[0][5:]):03d}' for s in added))

    with TestPipeline() as p:
        assert_that(_fill(p, SONGS, 'reserve', split_from) | beam.Map(check),
                    equal_to([(t, missing, True, True, True) for t, missing in expected.items()]))


def test_skip_mode_passes_songs_through():
    with TestPipeline() as p:
        out = p | beam.Create(SONGS[:5]) | FillMissing('skip', CLASSES, 0.1)
        assert_that(out | beam.Map(lambda s: s.title), equal_to([s.title for s in SONGS[:5]]))


def test_options_are_checked():
    with pytest.raises(ValueError, match='--target-stem'):
        FillMissing('reserve', (), 0.1)
    with pytest.raises(ValueError, match='--reserve-fraction'):
        FillMissing('reserve', CLASSES, 1.5)


def test_donor_is_looped_or_cut_and_level_matched():
    t = np.arange(1000) / 1000
    donor = (0.9 * np.sin(2 * np.pi * 5 * t))[None].astype(np.float32)
    song = [(0.05 * np.sin(2 * np.pi * 3 * np.arange(2500) / 1000))[None].astype(np.float32)] * 2
    level = reference_level(song)
    looped = fit_donor(donor, 2500, level)
    assert looped.shape == (1, 2500) and abs(rms_dbfs(looped) - level) < 0.1
    assert np.allclose(looped[:, 1000:2000], looped[:, :1000])       # looped, not padded with silence
    cut = fit_donor(np.tile(donor, (2, 3)), 1200, level)
    assert cut.shape == (2, 1200) and abs(rms_dbfs(cut) - level) < 0.5
    assert np.max(np.abs(fit_donor(donor * 1e-3, 1000, -1.0))) <= 0.99     # never past full scale
