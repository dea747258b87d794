import pytest

from schemas.taxonomy import classify_stem, instance_names, instrument_of


@pytest.mark.parametrize('name, expected', [
    ('Drums', 'drums'), ('drum', 'drums'), ('DRM_01', 'drums'), ('Kit', 'drums'), ('Kick In', 'drums'),
    ('Bass', 'bass'), ('Guitar', 'guitar'), ('guitars', 'guitar'), ('GTR 2', 'guitar'), ('ElecGtr', 'guitar'),
    ('Piano', 'piano'), ('Keys', 'piano'), ('Vocal', 'vocals'), ('LeadVox', 'vocals'), ('Perc', 'perc'),
    ('FX', 'fx'), ('Synth Pad', 'synth'), ('Lead Guitar', 'guitar'), ('Winds', 'winds'), ('Bassoon', 'winds'), ('Strings', 'strings'),
    ('Brass', 'brass'), ('Trumpet', 'brass'), ('Untitled 7', 'other'), ('drumloop', 'drums'),
])
def test_classify(name, expected):
    assert classify_stem(name) == expected


def test_instances():
    assert instance_names(['guitar', 'bass', 'guitar', 'guitar']) == ['guitar', 'bass', 'guitar#2', 'guitar#3']
    assert instrument_of('guitar#2') == 'guitar'


from schemas.taxonomy import SOURCE_LABELS, classify_source_label, gm_family, CANONICAL_CLASSES


@pytest.mark.parametrize('inst_class, expected', [
    ('Piano', 'piano'), ('Chromatic Percussion', 'perc'), ('Organ', 'piano'), ('Guitar', 'guitar'),
    ('Bass', 'bass'), ('Strings', 'strings'), ('Strings (continued)', 'strings'), ('Brass', 'brass'),
    ('Reed', 'winds'), ('Pipe', 'winds'), ('Synth Lead', 'synth'), ('Synth Pad', 'synth'),
    ('Sound Effects', 'fx'), ('Ethnic', 'other'), ('Percussive', 'perc'), ('Sound effects', 'fx'),
    ('Drums', 'drums'),
])
def test_slakh_inst_classes(inst_class, expected):
    assert classify_source_label('slakh', inst_class) == expected


def test_slakh_falls_back_to_program_family_then_program_name():
    assert gm_family(30) == 'Guitar' and gm_family(128) == 'Drums' and gm_family(122) == 'Sound effects'
    assert classify_source_label('slakh', None, (gm_family(30), 'Distortion Guitar')) == 'guitar'
    assert classify_source_label('slakh', 'Unheard Of', (None, 'Electric Bass (pick)')) == 'bass'
    with pytest.raises(ValueError):
        gm_family(200)


@pytest.mark.parametrize('label, expected', [('drums', 'drums'), ('bass', 'bass'), ('other', 'other'),
                                             ('vocals', 'vocals')])
def test_musdb_stems(label, expected):
    assert classify_source_label('musdb', label) == expected


@pytest.mark.parametrize('stem_name, expected', [
    ('bass', 'bass'), ('bowed_strings', 'strings'), ('drums', 'drums'), ('guitar', 'guitar'), ('other', 'other'),
    ('other_keys', 'piano'), ('other_plucked', 'other'), ('percussion', 'perc'), ('piano', 'piano'),
    ('vocals', 'vocals'), ('wind', 'winds'),
])
def test_moisesdb_stem_names(stem_name, expected):
    assert classify_source_label('moisesdb', stem_name) == expected


def test_unlisted_moisesdb_stem_falls_back_to_track_types():
    assert classify_source_label('moisesdb', 'mystery', ('distorted_electric_guitar',)) == 'guitar'
    assert classify_source_label('moisesdb', 'mystery', ('unknown_thing',)) == 'other'


def test_every_table_maps_to_canonical_classes_and_mix_is_never_a_file_name():
    assert all(cls in CANONICAL_CLASSES for table in SOURCE_LABELS.values() for cls in table.values())
    assert classify_stem('Mix') == 'other' and 'mix' in CANONICAL_CLASSES
    with pytest.raises(ValueError, match='no label table'):
        classify_source_label('nosuch', 'x')
