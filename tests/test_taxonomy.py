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
