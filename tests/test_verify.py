"""pipelines.verify passes a fresh build and names each kind of damage."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile
import webdataset

from pipelines.verify import CHECKS, main
from tests.conftest import ROOT


@pytest.fixture(scope='module')
def demo(demo_dataset):
    return demo_dataset[0]


@pytest.fixture
def copy(demo, tmp_path):
    root = str(tmp_path / 'dataset')
    shutil.copytree(demo.output, root)
    return root


def _verify(root, capsys, *flags):
    code = main([root, *flags])
    lines = capsys.readouterr().out.splitlines()
    results = {}
    for line in lines:
        status, _, rest = line.partition('  ')
        if status in ('PASS', 'FAIL'):
            name, _, message = rest.partition(': ')
            results[name] = (status, message)
    return code, results, lines


def _failed(results):
    return {name for name, (status, _) in results.items() if status == 'FAIL'}


def _manifest(root):
    with open(os.path.join(root, 'manifest.json')) as f:
        return json.load(f)


def _rewrite_listed(root, relative, data: bytes, examples=None):
    """Writes ``data`` at ``relative`` and updates the manifest's bytes and sha256 (and count) of it."""
    with open(os.path.join(root, relative), 'wb') as f:
        f.write(data)
    manifest = _manifest(root)
    for stats in manifest['splits'].values():
        for shards in stats['shards'].values():
            for shard in shards:
                if shard['path'] == relative:
                    shard.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
                    if examples is not None:
                        shard['examples'] = examples
    with open(os.path.join(root, 'manifest.json'), 'w') as f:
        json.dump(manifest, f)


def _read_tar(path):
    """A tar shard's samples as dicts of raw members."""
    return [{k: v for k, v in s.items() if k != '__url__'} for s in webdataset.WebDataset(path, shardshuffle=False)]


def _rewrite_tar(root, relative, samples):
    """Writes ``samples`` as the tar at ``relative`` and updates the manifest's bytes and sha256 of it."""
    buf = io.BytesIO()
    writer = webdataset.TarWriter(buf, encoder=False)
    for sample in samples:
        writer.write(sample)
    writer.close()
    _rewrite_listed(root, relative, buf.getvalue())


def test_a_fresh_build_passes_every_check(demo):
    out = subprocess.run([sys.executable, '-m', 'pipelines.verify', demo.output], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(':')[0] for line in lines if line.startswith(('PASS', 'FAIL'))] == \
           [f'PASS  {name}' for name in CHECKS]
    assert lines[-1] == f'TOTAL {len(CHECKS)} checks: {len(CHECKS)} PASS, 0 FAIL'


def test_a_deleted_shard_fails(copy, capsys):
    relative = _manifest(copy)['splits']['train']['shards']['webdataset'][1]['path']
    os.remove(os.path.join(copy, relative))
    code, results, lines = _verify(copy, capsys)
    assert code == 1 and results['shards exist'] == ('FAIL', f'missing shard: {relative}')
    assert lines[-1].endswith(f'{len(_failed(results))} FAIL')


def test_a_flipped_byte_fails(copy, capsys):
    relative = _manifest(copy)['splits']['train']['shards']['webdataset'][0]['path']
    path = os.path.join(copy, relative)
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 0x01
    open(path, 'wb').write(bytes(data))
    code, results, _ = _verify(copy, capsys)
    assert code == 1 and results['shards intact'][0] == 'FAIL'
    assert relative in results['shards intact'][1] and 'sha256' in results['shards intact'][1]


def test_a_parquet_file_with_a_missing_row_fails(copy, capsys):
    shard = _manifest(copy)['splits']['train']['shards']['parquet'][0]
    table = pq.read_table(os.path.join(copy, shard['path']))
    dropped = table.column('example_id')[0].as_py()
    buf = io.BytesIO()
    pq.write_table(table.slice(1), buf)
    _rewrite_listed(copy, shard['path'], buf.getvalue())    # bytes and sha256 agree: only the rows tell
    code, results, _ = _verify(copy, capsys)
    assert code == 1 and _failed(results) == {'example counts', 'formats agree'}
    assert results['example counts'][1] == f'{shard["path"]}: {shard["examples"] - 1} rows, manifest says {shard["examples"]}'
    assert results['formats agree'][1] == f'{dropped}: only in WebDataset'


def test_a_song_copied_into_a_second_split_fails(copy, capsys):
    manifest = _manifest(copy)
    train = [s for shard in manifest['splits']['train']['shards']['webdataset']
             for s in webdataset.WebDataset(os.path.join(copy, shard['path']), shardshuffle=False)]
    song = json.loads(train[0]['json'])['song_id']
    relative = manifest['splits']['validation']['shards']['webdataset'][0]['path']
    path = os.path.join(copy, relative)
    samples = list(webdataset.WebDataset(path, shardshuffle=False))
    copied = [dict(s, __key__='c' + s['__key__'][1:]) for s in train if json.loads(s['json'])['song_id'] == song]
    with open(path, 'wb') as f:
        writer = webdataset.TarWriter(f, encoder=False)
        for sample in samples + copied:
            writer.write({k: v for k, v in sample.items() if k != '__url__'})
        writer.close()
    _rewrite_listed(copy, relative, open(path, 'rb').read(), examples=len(samples) + len(copied))
    code, results, _ = _verify(copy, capsys)
    assert code == 1 and results['no leakage'][0] == 'FAIL'
    assert f"song {song!r} in 2 splits: ['train', 'validation']" in results['no leakage'][1]


def test_a_donor_from_another_split_and_a_respelled_artist_fail(copy, capsys):
    manifest = _manifest(copy)
    train = [json.loads(s['json']) for shard in manifest['splits']['train']['shards']['webdataset']
             for s in webdataset.WebDataset(os.path.join(copy, shard['path']), shardshuffle=False)]
    relative = manifest['splits']['validation']['shards']['webdataset'][0]['path']
    path = os.path.join(copy, relative)
    samples = list(webdataset.WebDataset(path, shardshuffle=False))
    meta = json.loads(samples[0]['json'])
    artist = f' {train[0]["artist"].upper()}  feat. Someone'
    meta.update(donors=['guitar<-Other/Gtr'], donor_song_ids=[train[0]['song_id']], donor_splits=['train'],
                artist=artist)
    samples[0] = dict(samples[0], json=json.dumps(meta).encode())
    with open(path, 'wb') as f:
        writer = webdataset.TarWriter(f, encoder=False)
        for sample in samples:
            writer.write({k: v for k, v in sample.items() if k != '__url__'})
        writer.close()
    _rewrite_listed(copy, relative, open(path, 'rb').read())
    code, results, _ = _verify(copy, capsys)
    message = results['no leakage'][1]
    assert code == 1 and results['no leakage'][0] == 'FAIL'
    assert f"artist {train[0]['artist'].lower()!r} in 2 splits: ['train', 'validation']" in message
    assert f"donor song {train[0]['song_id']!r} of train fills a validation example" in message
    assert f"donor song {train[0]['song_id']!r} is also in the dataset" in message


def test_an_unlisted_shard_fails(copy, capsys):
    relative = _manifest(copy)['splits']['test']['shards']['webdataset'][0]['path']
    shutil.copy(os.path.join(copy, relative), os.path.join(copy, 'webdataset', 'test', 'test-000099.tar'))
    code, results, _ = _verify(copy, capsys)
    assert code == 1 and _failed(results) == {'no unlisted shards'}
    assert results['no unlisted shards'][1] == 'unlisted file: webdataset/test/test-000099.tar'


def test_decode_writes_wavs_with_the_manifest_codec(demo, tmp_path, capsys):
    code, results, lines = _verify(demo.output, capsys, '--decode=1', f'--decode-dir={tmp_path / "wav"}')
    assert code == 0 and not _failed(results)
    wavs = sorted(os.listdir(tmp_path / 'wav'))
    assert len(wavs) == 2 and wavs[0].endswith('-context.wav') and wavs[1].endswith('-target.wav')
    audio, rate = soundfile.read(str(tmp_path / 'wav' / wavs[1]))
    assert rate == demo.manifest['codec']['sample_rate_hz'] and len(audio) == round(10.24 * rate)
    assert audio.std() > 0
    assert 'decoded 1 example(s) to 2 WAV(s)' in '\n'.join(lines)


def test_undecodable_samples_fail(copy, capsys):
    relative = _manifest(copy)['splits']['test']['shards']['webdataset'][0]['path']
    path = os.path.join(copy, relative)
    samples = _read_tar(path)
    pickled = io.BytesIO()
    np.save(pickled, np.array([{'codes': 1}], dtype=object), allow_pickle=True)
    samples[0]['target.npy'] = pickled.getvalue()              # codes that need pickle to load
    samples[1]['context.flac'] = b'fLaC' + b'\0' * 64          # audio that does not decode
    _rewrite_tar(copy, relative, samples)
    code, results, _ = _verify(copy, capsys)
    status, message = results['samples decode']
    assert code == 1 and status == 'FAIL'
    assert f'{samples[0]["__key__"]}: ValueError: Object arrays cannot be loaded when allow_pickle=False' in message
    assert f'{samples[1]["__key__"]}: LibsndfileError' in message


def test_a_folder_without_a_manifest_fails(tmp_path, capsys):
    code, results, lines = _verify(str(tmp_path), capsys)
    assert code == 1 and results['manifest'][0] == 'FAIL' and 'manifest.json' in results['manifest'][1]
    assert lines[-1] == 'TOTAL 1 check: 0 PASS, 1 FAIL'
