import os

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.sources.fixtures import make_baby_slakh, make_slakh
from transforms.failures import FAILED
from transforms.sources.slakh import ReadSlakh

STEMS = (('bass', 'bass', 'Electric Bass (finger)'), ('drums', 'drums', 'Drums'),
         ('guitar', 'guitar', 'Distortion Guitar'), ('piano', 'piano', 'Acoustic Grand Piano'))


def _summary(song):
    return (song.title, song.artist, song.source_split, song.group,
            tuple(sorted((s.instance, s.instrument, s.label) for s in song.stems)))


def test_redux_tree_quirks_splits_and_groups(tmp_path):
    root, marker = str(tmp_path / 'slakh'), str(tmp_path / 'pwned')
    make_slakh(root, marker=marker)
    with TestPipeline() as p:
        out = p | ReadSlakh(root)
        assert_that(out.songs | beam.Map(_summary), equal_to([
            # S04 is listed (audio_rendered: false) with no file; S05 and S14 after the gap.
            ('Track00001', None, 'train', 'lmd:aaaa1111', tuple(sorted(STEMS + (
                ('strings', 'strings', 'String Ensemble 1'), ('fx', 'fx', 'Seashore'))))),
            ('Track00007', None, 'train', 'lmd:uuid0004', STEMS),
            ('Track00004', None, 'validation', 'lmd:uuid0001', STEMS),
            ('Track00005', None, 'test', 'lmd:uuid0002', STEMS)]), label='songs')
        # Paths come from the track folder, never from the garbage audio_dir.
        assert_that(out.songs | beam.FlatMap(lambda s: [m.startswith(s.input_path + '/stems/S') for m in
                                                        (x.member for x in s.stems)]) | beam.Distinct(),
                    equal_to([True]), label='paths')
        assert_that(out[FAILED] | beam.Map(lambda f: (f.stage, os.path.basename(f.input), f.error_type)),
                    equal_to([('read', 'Track00002', 'InputError'), ('read', 'Track00003', 'InputError')]),
                    label='failed')


def test_unsafe_yaml_tag_is_refused_and_not_run(tmp_path):
    root, marker = str(tmp_path / 'slakh'), str(tmp_path / 'pwned')
    make_slakh(root, marker=marker)
    assert '!!python/object/apply:os.system' in open(f'{root}/train/Track00002/metadata.yaml').read()
    with TestPipeline() as p:
        out = p | ReadSlakh(root)
        assert_that(out[FAILED] | beam.Filter(lambda f: f.input.endswith('Track00002'))
                    | beam.Map(lambda f: 'not safe, parsable YAML' in f.message and 'ConstructorError' in f.message),
                    equal_to([True]), label='refused')
    assert not os.path.exists(marker), 'the YAML tag ran a command'


def test_omitted_tracks_only_on_request_and_grouped_with_their_midi(tmp_path):
    root = str(tmp_path / 'slakh')
    make_slakh(root)
    with TestPipeline() as p:
        out = p | ReadSlakh(root, include_omitted=True)
        assert_that(out.songs | beam.Filter(lambda s: s.group == 'lmd:aaaa1111')
                    | beam.Map(lambda s: (s.title, s.source_split)),
                    equal_to([('Track00001', 'train'), ('Track00006', 'omitted')]), label='same-uuid')


def test_baby_slakh_wav_16k_no_splits_and_audio_rendered_false(tmp_path):
    root = str(tmp_path / 'baby')
    names = make_baby_slakh(root)
    assert 'audio_rendered: false' in open(f'{root}/Track00001/metadata.yaml').read()
    with TestPipeline() as p:
        out = p | ReadSlakh(root)
        assert_that(out.songs | beam.Map(lambda s: (s.title, s.source_split, len(s.stems),
                                                    all(m.member.endswith('.wav') for m in s.stems))),
                    equal_to([(n, None, 4, True) for n in names]), label='songs')
        assert_that(out[FAILED], equal_to([]), label='failed')
