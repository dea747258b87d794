import copy

from schemas.continuation import ExampleMeta
from schemas.records import ExamplePlan, FailedRecord, SongRef, StemRef


def _round_trip(record):
    data = record.to_dict()
    before = copy.deepcopy(data)
    again = type(record).from_dict(data)
    assert again == record
    assert data == before   # from_dict never mutates its input


def test_stem_and_song_round_trip():
    stem = StemRef(instance='guitar#2', instrument='guitar', member='song/Gtr 2.wav', label='Gtr 2')
    _round_trip(stem)
    song = SongRef(song_id='abc', artist='A', title='T', source='stems', input_path='/x/A/T.zip',
                   container='zip', content_sha256='00', stems=(stem,), skipped_members=('notes.txt',))
    _round_trip(song)
    assert song.group == 'artist:a'
    assert SongRef(song_id='abc', artist=None, title='T', source='stems', input_path='p', container='zip',
                   content_sha256='00').group == 'song:abc'


def test_failed_and_plan_round_trip():
    _round_trip(FailedRecord(stage='decode', input='/x.zip::a.wav', error_type='AudioDecodeError',
                             message='bad', song_id='s'))
    _round_trip(ExamplePlan(target='bass', context=('drums', 'keys'), assortment=1))


def test_example_meta_round_trip():
    meta = ExampleMeta(example_id='e', song_id='s', artist=None, title='t', source='stems', split='train',
                       target_stem='guitar', target_instrument='guitar', context_stems=('drums',),
                       assortment=0, variant=0, chunk_index=3, start_seconds=30.72, duration_seconds=10.24,
                       mix_gain=0.8, codec='encodec_32khz', codec_weights='random:0', frame_rate=50.0,
                       sample_rate_hz=32000, context_waveform_id='c', target_waveform_id='t', context_scale=None)
    _round_trip(meta)


def test_corpus_fields_round_trip_and_group():
    stem = StemRef(instance='guitar', instrument='guitar', member='/m/a.wav', label='guitar',
                   summed_members=('/m/b.wav',), stream=None, source_labels=('clean_electric_guitar',),
                   has_bleed=True, donor='Track00001/S02')
    _round_trip(stem)
    assert stem.members == ('/m/a.wav', '/m/b.wav') and stem.labels == ('guitar', 'clean_electric_guitar')
    song = SongRef(song_id='abc', artist='A', title='T', source='slakh', input_path='/x', container='files',
                   content_sha256='00', stems=(stem,), source_split='omitted', group_key='lmd:u1')
    _round_trip(song)
    assert song.group == 'lmd:u1'
    assert song.example_fields('guitar', ()) == {
        'target_label': 'guitar', 'target_labels': ('guitar', 'clean_electric_guitar'),
        'donors': ('guitar<-Track00001/S02',), 'donor_song_ids': (None,), 'donor_splits': (None,), 'bleed_stems': ('guitar',)}
