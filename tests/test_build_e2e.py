"""The whole pipeline on the real DirectRunner with a random-weight codec."""
import glob
import hashlib
import itertools
import json
import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.build import main, run
from pipelines.verify import main as verify_main
from schemas.manifest import read_errors
from schemas.parquet import codes_of
from schemas.webdataset import read_samples
from tests.conftest import FAST_FLAGS
from tests.corpus import three_songs, wav_bytes, write_song, write_zip


def _samples(root):
    return {s['__key__']: s for path in sorted(glob.glob(f'{root}/webdataset/*/*.tar')) for s in read_samples(path)}


def _rows(root):
    rows = {}
    for path in sorted(glob.glob(f'{root}/parquet/*/*.parquet')):
        for row in pq.read_table(path).to_pylist():
            rows[row['example_id']] = row
    return rows


def _file_hashes(root):
    """sha256 of every file the dataset holds; counters.json reports how the run went (stage
    times among them), not what it built."""
    return {os.path.relpath(p, root): hashlib.sha256(open(p, 'rb').read()).hexdigest()
            for p in glob.glob(f'{root}/**/*', recursive=True)
            if os.path.isfile(p) and os.path.basename(p) != 'counters.json'}


@pytest.fixture(scope='module')
def demo(demo_dataset):
    """The session's demo build (tests/conftest.py), shared with the reader, verify and report tests."""
    return demo_dataset[0]


def test_demo_shards_parquet_and_manifest_agree(demo):
    manifest, samples, rows = demo.manifest, _samples(demo.output), _rows(demo.output)
    assert set(manifest['splits']) == {'train', 'validation', 'test'}
    assert set(samples) == set(rows) and len(samples) == manifest['totals']['examples'] > 0
    for split, stats in manifest['splits'].items():
        assert stats['examples'] == sum(s['examples'] for s in stats['shards']['webdataset'])
        assert stats['examples'] == sum(s['examples'] for s in stats['shards']['parquet'])
        assert stats['examples'] == sum(1 for s in samples.values() if s['json']['split'] == split)
        for shard in stats['shards']['webdataset'] + stats['shards']['parquet']:
            data = open(os.path.join(demo.output, shard['path']), 'rb').read()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (shard['bytes'], shard['sha256'])
    codec = manifest['codec']
    frames = round(10.24 * codec['frame_rate'])
    for key, sample in samples.items():
        for name in ('context', 'target'):
            codes = sample[f'{name}.npy']
            assert codes.dtype == np.int16 and codes.shape == (codec['codebooks'], frames)
            assert 0 <= codes.min() and codes.max() < codec['codebook_size']
            assert np.array_equal(codes, codes_of(rows[key][f'{name}_codes']))
        meta = sample['json']
        assert meta['example_id'] == key and meta['codec'] == 'encodec_32khz'
        assert {k: rows[key][k] for k in ('song_id', 'split', 'target_stem', 'mix_gain')} == \
               {k: meta[k] for k in ('song_id', 'split', 'target_stem', 'mix_gain')}
    assert codec['weights'] == 'random:0' and manifest['options']['demo'] is True


def test_no_song_or_artist_in_two_splits(demo):
    rows = _rows(demo.output).values()
    for field in ('song_id', 'artist'):
        splits = {}
        for row in rows:
            splits.setdefault(row[field], set()).add(row['split'])
        assert all(len(s) == 1 for s in splits.values()), field


def test_random_codes_use_the_codebooks_and_differ_between_songs(demo):
    samples = list(_samples(demo.output).values())
    codes = np.concatenate([s['target.npy'] for s in samples] + [s['context.npy'] for s in samples], axis=1)
    size = demo.manifest['codec']['codebook_size']
    usage = [len(np.unique(row)) / size for row in codes]
    assert min(usage) >= 0.05, usage
    by_song = {}
    for s in samples:
        by_song.setdefault(s['json']['song_id'], set()).update(
            (s['target.npy'].tobytes(), s['context.npy'].tobytes()))
    for a, b in itertools.combinations(by_song, 2):
        assert not by_song[a] & by_song[b], 'two songs share a code sequence'


def test_each_distinct_waveform_is_encoded_once(demo):
    rows = _rows(demo.output).values()
    distinct = {(r['context_waveform_id'], r['chunk_index']) for r in rows} | \
               {(r['target_waveform_id'], r['chunk_index']) for r in rows}
    counters = demo.counters
    assert counters['EncodeChunksFn.windows_encoded'] == len(distinct)
    assert counters['EncodeChunksFn.waveforms_encoded'] == len({w for w, _ in distinct})
    assert counters['EncodeChunksFn.windows_encoded'] < 2 * len(rows)   # targets are shared by assortments


@pytest.fixture(scope='module')
def small_corpus(tmp_path_factory):
    return three_songs(str(tmp_path_factory.mktemp('small') / 'in'))


def test_same_command_gives_identical_shards_and_multiprocess_parity(small_corpus, tmp_path):
    # Default flags, nothing pinned: in-process the codec runs 2 threads here, in each of the
    # 2 worker processes 1, and batches mix other segments; the files are the same bytes.
    out = str(tmp_path / 'out')
    first = run([f'--input={small_corpus}', f'--output={out}'] + FAST_FLAGS)
    hashes = _file_hashes(out)
    assert first.manifest['totals']['examples'] > 0
    assert first.manifest['codec']['runtime'] == 'openvino' and first.manifest['codec']['threads'] is None

    multi = str(tmp_path / 'multi')
    run([f'--input={small_corpus}', f'--output={multi}', '--direct_running_mode=multi_processing',
         '--direct_num_workers=2'] + FAST_FLAGS)
    without_manifest = lambda found: {k: v for k, v in found.items() if k != 'manifest.json'}   # noqa: E731
    assert without_manifest(_file_hashes(multi)) == without_manifest(hashes)
    in_manifest = lambda root: dict(json.load(open(f'{root}/manifest.json')), options=None)   # noqa: E731
    assert in_manifest(multi) == in_manifest(out)     # the options differ only in --output


def test_bad_inputs_land_in_errors_and_good_songs_complete(tmp_path):
    root = str(tmp_path / 'in')
    write_song(root, 'Good', 'alpha', 1)
    write_song(root, 'Good', 'beta', 2, extra={'notes.txt': b'tempo 120',               # not audio
                                               'Vocals.wav': b'RIFF\x00\x00garbage',    # cannot decode
                                               'Synth.wav': wav_bytes(np.zeros(0, np.float32)),  # empty
                                               'Fx.wav': wav_bytes(np.full(1000, np.nan, np.float32),
                                                                   subtype='FLOAT'),
                                               'Strings.wav': wav_bytes(np.zeros((44100, 4), np.float32))})
    os.makedirs(f'{root}/Bad')
    with open(f'{root}/Bad/truncated.zip', 'wb') as f:
        f.write(open(write_song(str(tmp_path / 'x'), 'X', 'y', 3), 'rb').read()[:500])
    write_zip(f'{root}/Bad/slip.zip', {'../../escape/Drums.wav': wav_bytes(np.zeros(100, np.float32))})
    write_zip(f'{root}/Bad/bomb.zip', {'Drums.wav': b'\0' * (8 * 2**20)})
    write_song(root, 'Bad', 'long', 4, seconds=12)
    result = run([f'--input={root}', f'--output={tmp_path / "out"}', '--max-uncompressed-mb=6',
                  '--max-song-seconds=10'] + FAST_FLAGS)
    errors = read_errors(str(tmp_path / 'out'))
    found = {(e['stage'], os.path.basename(e['input'].split('::')[-1] if '::' in e['input'] else e['input']))
             for e in errors}
    assert found == {('read', 'notes.txt'), ('decode', 'Vocals.wav'), ('decode', 'Synth.wav'),
                     ('decode', 'Fx.wav'), ('read', 'truncated.zip'), ('read', 'slip.zip'), ('read', 'bomb.zip'),
                     ('decode', 'Drums.wav'), ('decode', 'Bass.wav'), ('decode', 'Guitar.wav'),
                     ('decode', 'Keys.wav')}
    assert all(e['error_type'] and e['message'] for e in errors)
    assert any('longer than the limit' in e['message'] for e in errors)
    manifest = result.manifest
    assert manifest['errors']['total'] == len(errors) and manifest['errors']['by_stage'] == {'read': 4, 'decode': 7}
    rows = _rows(str(tmp_path / 'out')).values()
    assert {r['title'] for r in rows} == {'alpha', 'beta'}
    for title in ('alpha', 'beta'):    # beta keeps its four good stems
        assert {r['target_stem'] for r in rows if r['title'] == title} == {'guitar', 'bass'}
    assert result.counters['LoadStemsFn.stems_downmixed'] == 1


def test_a_copy_under_another_artist_is_skipped_and_logged(tmp_path, capsys):
    root = str(tmp_path / 'in')
    original = write_song(root, 'Ana', 'one', 1)
    write_song(root, 'Bo', 'two', 2)
    os.makedirs(f'{root}/Cy')
    shutil.copyfile(original, f'{root}/Cy/copy.zip')      # same bytes, another artist (split group)
    out = str(tmp_path / 'out')
    result = run([f'--input={root}', f'--output={out}'] + FAST_FLAGS)
    rows = list(_rows(out).values())
    assert {r['title'] for r in rows} == {'one', 'two'} and {r['artist'] for r in rows} == {'Ana', 'Bo'}
    errors = read_errors(out)
    assert [(e['stage'], e['error_type'], e['input']) for e in errors] == [
        ('read', 'DuplicateContent', f'{root}/Cy/copy.zip')]
    assert f'same content as {original}' in errors[0]['message']
    counters = result.manifest['counters']
    assert counters['FirstCopyFn.archives_duplicate'] == 1 and counters['FirstCopyFn.archives_new'] == 2
    capsys.readouterr()
    assert verify_main([out]) == 0     # example ids unique, one split per song
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith('FAIL')]


def test_nothing_usable_exits_non_zero_and_says_why(tmp_path, capsys):
    os.makedirs(tmp_path / 'empty')
    assert main([f'--input={tmp_path / "empty"}', f'--output={tmp_path / "out"}'] + FAST_FLAGS) == 2
    assert 'no songs found under' in capsys.readouterr().err
    write_zip(str(tmp_path / 'broken' / 'A' / 's.zip'), {'x.txt': b'x'})
    assert main([f'--input={tmp_path / "broken"}', f'--output={tmp_path / "out2"}'] + FAST_FLAGS) == 2
    assert 'no examples were written' in capsys.readouterr().err
    assert json.loads(open(tmp_path / 'out2' / 'manifest.json').read())['errors']['total'] == 1
