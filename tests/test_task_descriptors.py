"""--task=descriptors and pipelines.query: the features, the build, the table, the index, the query."""
import glob
import hashlib
import io
import json
import os
import shutil
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from pipelines.build import resolve_paths, run
from pipelines.options import parse_args
from pipelines.query import compared_frames, main as query_main, query, search
from schemas.audio_io import to_channels
from schemas.descriptor_index import open_index, zscore
from schemas.descriptors import DescriptorMeta
from tests.corpus import write_song
from schemas.descriptor_columns import (COLUMN, COLUMNS, INDEX_FEATURES, add_moments, block_moments, index_features,
                                        z_stats)
from transforms.descriptor_features import deltas, describe, frame_count, mel_filterbank
from transforms.tasks.descriptors import MomentsFn, parse_parts

RATE, HOP = 44100, 1024
SONGS = (('Ada Lace', 'One', 0), ('Basalt', 'Two', 1), ('Kite Theory', 'Three', 2))


def _tone(hz: float, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


@pytest.mark.parametrize('hz', [220.0, 440.0, 1000.0])
def test_pure_tone_gives_its_frequency_as_f0_within_one_percent(hz):
    f0 = describe(_tone(hz), RATE, HOP)[:, COLUMN['f0']]
    assert np.isfinite(f0[1:-1]).all()                       # voiced wherever the frame is whole
    assert abs(np.nanmedian(f0) / hz - 1) < 0.01
    assert np.nanmax(np.abs(f0[1:-1] / hz - 1)) < 0.01        # every frame, not only the median


def test_f0_at_another_rate_and_hop():
    f0 = describe(_tone(330.0, rate=22050), 22050, 512)[:, COLUMN['f0']]
    assert abs(np.nanmedian(f0) / 330.0 - 1) < 0.01


def test_noise_and_silence_are_unvoiced():
    noise = np.random.default_rng(0).standard_normal(RATE).astype(np.float32) * 0.3
    assert np.isnan(describe(noise, RATE, HOP)[:, COLUMN['f0']]).mean() > 0.9
    silent = describe(np.zeros(RATE // 2, np.float32), RATE, HOP)
    assert np.isnan(silent[:, COLUMN['f0']]).all()
    assert np.isfinite(np.delete(silent, COLUMN['f0'], axis=1)).all()


def test_shapes_dtypes_and_columns():
    for samples in (2048, 44100, 44100 + 1023, 44100 + 1024):
        d = describe(np.random.default_rng(samples).standard_normal(samples).astype(np.float32), RATE, HOP)
        assert d.shape == (frame_count(samples, HOP), 44) == (1 + samples // HOP, len(COLUMNS))
        assert d.dtype == np.float32
    assert COLUMNS[:13] == [f'mfcc_{i}' for i in range(13)] and COLUMNS[13] == 'mfcc_delta_0'
    assert COLUMNS[26] == 'mfcc_delta2_0' and COLUMNS[39:] == ['spectral_centroid', 'spectral_flatness',
                                                               'spectral_rolloff', 'rms', 'f0']
    assert index_features(d).shape == (len(d), len(INDEX_FEATURES)) == (len(d), 45)
    tone = describe(_tone(1000.0), RATE, HOP)
    assert abs(np.median(tone[:, COLUMN['spectral_centroid']]) / 1000 - 1) < 0.02
    assert abs(np.median(tone[:, COLUMN['rms']]) - 0.5 / np.sqrt(2)) < 1e-3


def test_mel_filterbank_and_deltas():
    filters = mel_filterbank(RATE)
    assert filters.shape == (128, 1025) and (filters >= 0).all()
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > 900
    t = np.arange(20, dtype=np.float64)[:, None]
    assert np.allclose(deltas(3.0 * t, 1), 3.0)                  # slope everywhere, the ends too
    assert np.allclose(deltas(t ** 2, 2), 2.0)                   # a quadratic's second derivative
    assert np.allclose(deltas(t[:5] * 2.0, 1), 2.0)              # shorter than the window
    assert (deltas(t[:2], 1) == 0).all()


def test_a_clip_cut_at_a_frame_offset_has_the_songs_frames():
    """sample_offset = frame * hop: the frames of a clip cut at that offset are the song's frames
    from there on (those whose window and delta context lie inside the clip)."""
    song = np.random.default_rng(3).standard_normal(5 * RATE).astype(np.float32) * 0.1 + _tone(220.0, 5.0)
    whole = describe(song, RATE, HOP)
    frame = 37
    clip = song[frame * HOP:frame * HOP + 2 * RATE]
    used = compared_frames(len(clip), RATE, HOP)
    assert used[0] == 9 and len(used) > 50
    assert np.allclose(describe(clip, RATE, HOP)[used], whole[frame + used], rtol=1e-4, atol=1e-3, equal_nan=True)


def test_moments_are_exact_whatever_the_order():
    rng = np.random.default_rng(0)
    blocks = [rng.standard_normal((n, 3)) * [1, 100, 1e-3] + [0, 5000, 1] for n in (5, 50, 500, 7)]
    blocks[2][::3, 2] = np.nan
    moments = [block_moments(b) for b in blocks]
    fn = MomentsFn()
    one = fn.extract_output(fn.merge_accumulators([fn.add_input(fn.add_input(None, moments[0]), moments[1]),
                                                   fn.add_input(fn.add_input(None, moments[2]), moments[3])]))
    other = fn.extract_output(fn.merge_accumulators([fn.add_input(None, m) for m in reversed(moments)]))
    assert one == other == add_moments(add_moments(moments[3], moments[1]), add_moments(moments[0], moments[2]))
    mean, std = z_stats(one)
    stacked = np.concatenate(blocks)
    assert np.allclose(mean, np.nanmean(stacked, axis=0), rtol=1e-12) and np.allclose(std, np.nanstd(stacked, axis=0))


def test_descriptor_meta_round_trip():
    meta = DescriptorMeta(example_id='e', song_id='s', stem='guitar#2', split='train', artist=None, title='t',
                          source='stems', sample_rate_hz=RATE, hop_length=HOP, num_samples=3 * RATE,
                          duration_seconds=3.0)
    data = meta.to_dict()
    assert DescriptorMeta.from_dict(data) == meta and data == meta.to_dict()


def test_parse_parts():
    assert parse_parts(None) == parse_parts(['mix,stems']) == ('stems', 'mix')
    assert parse_parts(['mix']) == ('mix',)
    with pytest.raises(ValueError, match='descriptor-of'):
        parse_parts(['drums'])


def test_sample_rate_is_shared_with_separation_and_channels_is_not():
    args, _ = parse_args(['--task=descriptors', '--input=in', '--output=out', '--sample-rate=22050'])
    resolve_paths(args)
    assert args.sample_rate == 22050 and args.shard_mb == 256.0
    args, _ = parse_args(['--task=descriptors', '--input=in', '--output=out', '--channels=1'])
    with pytest.raises(ValueError, match='--channels'):
        resolve_paths(args)


# ---------------------------------------------------------------- a build on generated songs

def _mono_stem(corpus: str, artist: str, title: str, member: str) -> np.ndarray:
    """A stem as the build hears it: decoded, channels averaged."""
    with zipfile.ZipFile(os.path.join(corpus, artist, f'{title}.zip')) as archive:
        audio, _ = sf.read(io.BytesIO(archive.read(f'{title}/{member}')), dtype='float32', always_2d=True)
    return to_channels(np.ascontiguousarray(audio.T), 1)[0]


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp('descriptors')
    corpus = str(base / 'corpus')
    for artist, title, seed in SONGS:
        write_song(corpus, artist, title, seed, seconds=3.0)
    result = run(['--task=descriptors', f'--input={corpus}', f'--output={base / "out"}', '--split-ratios=2,1,0'])
    return result, corpus


def _table(root: str):
    return ds.dataset(os.path.join(root, 'descriptors'), format='parquet', partitioning='hive').to_table()


def test_build_writes_a_partitioned_table_keyed_by_song_stem_frame(built):
    result, _ = built
    table = _table(result.output)
    manifest = result.manifest
    assert table.schema.names[:6] == ['song_id', 'stem', 'frame', 'sample_offset', 'artist', 'title']
    assert all(str(table.schema.field(c).type) == 'float' for c in COLUMNS)
    rows = table.to_pandas()
    assert set(rows['split']) == set(manifest['splits']) and len(rows) == sum(
        json.load(open(os.path.join(result.output, 'descriptor-index/stats.json')))['rows_by_split'].values())
    assert (rows['sample_offset'] == rows['frame'] * HOP).all()
    assert set(rows['stem']) == {'bass', 'drums', 'guitar', 'piano', 'mix'}
    expected_frames = frame_count(3 * RATE, HOP)
    for (song, stem), group in rows.groupby(['song_id', 'stem']):
        assert list(group['frame']) == list(range(expected_frames))      # every frame once, in order
        assert group['split'].nunique() == 1
    assert rows['f0'].isna().any() and rows['f0'].notna().any()
    for path in glob.glob(os.path.join(result.output, 'descriptors', 'split=*', '*.parquet')):
        part = ds.dataset(path, format='parquet').to_table(columns=['song_id', 'stem', 'frame']).to_pandas()
        assert list(part.itertuples(index=False)) == sorted(part.itertuples(index=False))
    assert manifest['descriptors']['hop_length'] == HOP and manifest['descriptors']['sample_rate_hz'] == RATE


def test_manifest_lists_every_file_with_its_sha256(built):
    result, _ = built
    root, manifest = result.output, result.manifest
    listed = {s['path']: s for split in manifest['splits'].values() for shards in split['shards'].values()
              for s in shards}
    listed.update({p['path']: p for p in manifest['exports']['descriptor-index']['paths']})
    on_disk = {os.path.relpath(p, root).replace(os.sep, '/') for p in glob.glob(f'{root}/descriptor*/**/*',
                                                                               recursive=True) if os.path.isfile(p)}
    assert on_disk == set(listed) and 'descriptor-index/stats.json' in on_disk
    for path, entry in listed.items():
        data = open(os.path.join(root, path), 'rb').read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry['bytes'], entry['sha256'])


def test_stats_are_the_training_rows_and_the_index_is_the_table_z_scored(built):
    result, _ = built
    root = result.output
    stats = json.load(open(os.path.join(root, 'descriptor-index/stats.json')))
    rows = _table(root).to_pandas()
    train = index_features(rows[rows['split'] == 'train'][COLUMNS].to_numpy(np.float32))
    assert stats['from_splits'] == ['train'] and stats['features'] == INDEX_FEATURES
    assert np.allclose(stats['mean'], np.nanmean(train.astype(np.float64), axis=0), rtol=1e-5, atol=1e-5)
    assert np.allclose(stats['std'], np.nanstd(train.astype(np.float64), axis=0), rtol=1e-4, atol=1e-5)
    index = open_index(root)
    assert index.rows == len(rows)
    for split in result.manifest['splits']:
        part = ds.dataset(os.path.join(root, f'descriptors/split={split}/part-00000.parquet')).to_table().to_pandas()
        matrix = np.load(os.path.join(root, f'descriptor-index/{split}/part-00000.npy'))
        z = zscore(index_features(part[COLUMNS].to_numpy(np.float32)), stats['mean'], stats['std'])
        assert np.allclose(matrix[:, :-1], z, atol=1e-5)
        assert np.allclose(matrix[:, -1], (z.astype(np.float64) ** 2).sum(axis=1), rtol=1e-5)


def _song_id(root: str, title: str) -> str:
    rows = _table(root).to_pandas()
    return rows[rows['title'] == title]['song_id'].iloc[0]


def test_query_of_a_segment_from_the_table_returns_that_segment_first(built, tmp_path, capsys):
    result, corpus = built
    stem = _mono_stem(corpus, 'Basalt', 'Two', 'Guitar.wav')
    offset = 30 * HOP
    clip = str(tmp_path / 'clip.wav')
    sf.write(clip, stem[offset:offset + int(1.5 * RATE)], RATE, subtype='FLOAT')
    expected = (_song_id(result.output, 'Two'), 'guitar', offset)
    assert query_main([result.output, '--audio', clip, '-k', '3', '--json']) == 0
    matches = json.loads(capsys.readouterr().out)
    assert (matches[0]['song_id'], matches[0]['stem'], matches[0]['sample_offset']) == expected
    assert matches[0]['distance'] < 1e-3 < matches[1]['distance'] and len(matches) == 3
    assert matches[0]['seconds'] == pytest.approx(offset / RATE)
    found = query(result.output, clip, k=5)
    assert (found[0].song_id, found[0].stem, found[0].sample_offset) == expected
    assert [m.distance for m in found] == sorted(m.distance for m in found)
    assert query_main(['--index', result.output, '--audio', clip, '-k', '2']) == 0     # the table; the old flag
    assert expected[0] in capsys.readouterr().out.splitlines()[1]


@pytest.mark.parametrize('scheme', ['s3', 'gs'])
def test_query_reads_an_index_in_an_object_store(built, tmp_path, monkeypatch, capsys, scheme):
    from tests.object_stores import gcs_store, loopback_only, s3_store
    result, corpus = built
    clip = str(tmp_path / 'clip.wav')
    sf.write(clip, _mono_stem(corpus, 'Kite Theory', 'Three', 'Bass.wav')[40 * HOP:40 * HOP + RATE], RATE)
    assert query_main([result.output, '--audio', clip, '-k', '4', '--json']) == 0
    local = json.loads(capsys.readouterr().out)
    monkeypatch.setenv('STEMFORGE_CACHE', str(tmp_path / 'cache'))
    with (s3_store if scheme == 's3' else gcs_store)(monkeypatch, str(tmp_path / 'server')) as store, \
            loopback_only() as foreign:
        store.put_tree(result.output, 'dataset')
        for _ in range(2):    # the second query finds the files in the cache
            assert query_main([store.url('dataset'), '--audio', clip, '-k', '4', '--json'] + store.flags) == 0
            assert json.loads(capsys.readouterr().out) == local
        assert query_main([store.url('nothing'), '--audio', clip] + store.flags) == 2
        assert 'manifest unreadable' in capsys.readouterr().err
    assert foreign == []
    cached = glob.glob(str(tmp_path / 'cache' / 'query-index' / '*' / 'descriptor-index' / '**' / '*.npy'),
                       recursive=True)
    assert cached and not glob.glob(str(tmp_path / 'cache' / '**' / '*.part'), recursive=True)


def test_query_of_a_mix_segment_and_filters(built, tmp_path):
    result, corpus = built
    members = ('Drums.wav', 'Bass.wav', 'Guitar.wav', 'Keys.wav')
    mix = np.sum([_mono_stem(corpus, 'Ada Lace', 'One', m) for m in members], axis=0, dtype=np.float32)
    offset = 57 * HOP
    index = open_index(result.output)
    found = search(index, mix[offset:offset + RATE], k=2)
    assert (found[0].song_id, found[0].stem, found[0].sample_offset) == (_song_id(result.output, 'One'), 'mix', offset)
    assert search(index, mix[offset:offset + RATE], k=1, exact=True)[0] == found[0]
    only_bass = search(index, mix[offset:offset + RATE], k=4, stems=('bass',))
    assert {m.stem for m in only_bass} == {'bass'}
    starts = [m.frame for m in only_bass if m.song_id == only_bass[0].song_id]
    clip_frames = frame_count(RATE, HOP)
    assert all(abs(a - b) > clip_frames // 2 for a in starts for b in starts if a != b)   # separated results


def test_query_refuses_bad_input_with_exit_2(built, tmp_path, capsys):
    result, _ = built
    clip = str(tmp_path / 'short.wav')
    sf.write(clip, np.zeros(1000, np.float32), RATE)
    text = str(tmp_path / 'notes.wav')
    open(text, 'w').write('not audio')
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'manifest.json').write_text(json.dumps({'task': 'continuation'}))
    cases = {(str(tmp_path / 'missing'), clip): 'no dataset at', (str(other), clip): 'continuation dataset',
             (result.output, str(tmp_path / 'nope.wav')): 'cannot read the clip',
             (result.output, text): 'cannot read the clip', (result.output, clip): 'shorter than one analysis frame'}
    for (index, audio), message in cases.items():
        assert query_main(['--index', index, '--audio', audio]) == 2
        assert message in capsys.readouterr().err


def test_build_is_byte_identical_on_the_multi_process_runner(built, tmp_path):
    result, corpus = built
    again = run(['--task=descriptors', f'--input={corpus}', f'--output={tmp_path / "again"}', '--split-ratios=2,1,0',
                 '--direct_running_mode=multi_processing', '--direct_num_workers=2'])

    def hashes(root):
        return {os.path.relpath(p, root): hashlib.sha256(open(p, 'rb').read()).hexdigest()
                for p in glob.glob(f'{root}/descriptor*/**/*', recursive=True) if os.path.isfile(p)}
    assert hashes(result.output) == hashes(again.output)
    assert {k: v for k, v in result.manifest.items() if k not in ('options', 'counters')} == \
        {k: v for k, v in again.manifest.items() if k not in ('options', 'counters')}


def test_verify_checks_the_table_and_the_index(built, tmp_path):
    from pipelines.verify import run_checks, scan_dataset
    result, _ = built
    results = run_checks(scan_dataset(result.output))
    assert all(ok for _, ok, _ in results) and [name for name, _, _ in results] == [
        'shards exist', 'shards intact', 'no unlisted shards', 'exports intact', 'example counts', 'samples decode',
        'rows valid', 'ids unique', 'no leakage']
    blocks = sum(stats['examples'] for stats in result.manifest['splits'].values())
    assert dict((n, m) for n, _, m in results)['ids unique'] == f'{blocks} example ids, each once'
    copy = str(tmp_path / 'copy')
    shutil.copytree(result.output, copy)
    with open(f'{copy}/descriptors/split=train/stray.parquet', 'wb') as f:
        f.write(b'not listed')
    index = sorted(glob.glob(f'{copy}/descriptor-index/*/*.npy'))[0]
    with open(index, 'ab') as f:
        f.write(b'\0')
    results = {name: (ok, message) for name, ok, message in run_checks(scan_dataset(copy))}
    assert not results['no unlisted shards'][0] and 'descriptors/split=train/stray.parquet' in results['no unlisted shards'][1]
    assert not results['exports intact'][0] and os.path.relpath(index, copy) in results['exports intact'][1]
    assert results['shards exist'][0] and results['shards intact'][0]


def test_datasets_loads_the_card_of_a_descriptors_build(built):
    from tests.test_trainer_formats import load_with_datasets
    import pyarrow.parquet as pq
    result = built[0]
    rows = {split: sum(pq.read_metadata(os.path.join(result.output, s['path'])).num_rows
                       for s in stats['shards']['descriptors'])
            for split, stats in result.manifest['splits'].items()}     # a block of frames is many rows
    load_with_datasets(result.output, result.manifest, rows)


def test_verify_reads_every_descriptor_block(built, tmp_path):
    from pipelines.verify import run_checks, scan_dataset
    from tests.test_verify import _rewrite_listed
    result, _ = built
    copy = str(tmp_path / 'copy')
    shutil.copytree(result.output, copy)
    shard = result.manifest['splits']['train']['shards']['descriptors'][0]
    table = pq.read_table(os.path.join(copy, shard['path']))
    first = f'{table.column("song_id")[0].as_py()}/{table.column("stem")[0].as_py()}'
    last = f'{table.column("song_id")[-1].as_py()}/{table.column("stem")[-1].as_py()}'
    assert first != last
    rms = table.column('rms').to_numpy().copy()
    rms[-1] = np.nan                                             # the last block: a descriptor that is no number
    table = table.set_column(table.schema.get_field_index('rms'), 'rms', pa.array(rms))
    table = pa.concat_tables([table.slice(0, 3), table.slice(4)])  # the first block: frame 3 missing
    out = io.BytesIO()
    pq.write_table(table, out)
    _rewrite_listed(copy, shard['path'], out.getvalue())
    results = {name: (ok, message) for name, ok, message in run_checks(scan_dataset(copy))}
    assert [name for name, (ok, _) in results.items() if not ok] == ['rows valid']
    assert f'{shard["path"]}: {first}: frames are not 0..' in results['rows valid'][1]
    assert f"{shard['path']}: {last}: not a number in ['rms']" in results['rows valid'][1]
