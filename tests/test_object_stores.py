"""Building from an object store into the same store, through Beam's s3:// and gs:// filesystems,
against real servers on 127.0.0.1: the shards match a local build's byte for byte."""
import glob
import hashlib
import json
import os

import pytest

from pipelines.build import run
from tests.conftest import FAST_FLAGS
from tests.corpus import write_song
from tests.object_stores import gcs_store, loopback_only, s3_store

# Float results depend on torch's thread count; pinning it lets a multi-process build match.
FLAGS = FAST_FLAGS + ['--codec-threads=1', '--assortments=1', '--augmentations=0', '--shard-examples=1']


def _hashes(root):
    return {os.path.relpath(p, root).replace(os.sep, '/'): hashlib.sha256(open(p, 'rb').read()).hexdigest()
            for p in glob.glob(f'{root}/**/*', recursive=True) if os.path.isfile(p)}


@pytest.fixture(scope='module')
def local(tmp_path_factory):
    """A corpus (a zipped song and a song folder) and its local build."""
    base = tmp_path_factory.mktemp('stores')
    corpus = str(base / 'corpus')
    write_song(corpus, 'Ana', 'one', 1, seconds=2.5)
    write_song(corpus, 'Bo', 'two', 2, seconds=2.5, as_folder=True)
    result = run([f'--input={corpus}', f'--output={base / "local"}'] + FLAGS)
    return corpus, result, _hashes(str(base / 'local'))


def _check_same_as_local(store, local, result):
    corpus, local_result, local_hashes = local
    remote = store.hashes('dataset')
    assert not [p for p in remote if '.tmp-' in p], 'a temporary file was left behind'
    shards = {p: h for p, h in local_hashes.items() if p.startswith(('webdataset/', 'parquet/'))}
    assert len(shards) >= 4 and {p: remote.get(p) for p in shards} == shards
    assert set(remote) == set(local_hashes)
    assert remote['errors/errors.jsonl'] == local_hashes['errors/errors.jsonl']
    manifest = json.loads(store.read('dataset/manifest.json'))
    assert manifest['splits'] == local_result.manifest['splits'] and manifest == result.manifest
    for name in ('input', 'output'):
        assert manifest['options'].pop(name).startswith(f'{store.scheme}://')
        local_result.manifest['options'].pop(name, None)
    assert {k: v for k, v in manifest['options'].items() if k != 'preset'} == \
           {k: v for k, v in local_result.manifest['options'].items() if k != 'preset'}
    assert json.loads(store.read('dataset/counters.json'))['ReadSongRefFn.songs_read'] == 2


def test_s3_build_matches_local_build(local, monkeypatch, tmp_path):
    """moto's S3 server; a two-process DirectRunner (the s3 flags reach the worker processes)."""
    with s3_store(monkeypatch, str(tmp_path / 'server')) as store, loopback_only() as foreign:
        assert store.put_tree(local[0], 'corpus') == 1 + 4
        result = run([f'--input={store.url("corpus")}', f'--output={store.url("dataset")}',
                      '--preset=direct-multiprocess', '--direct_num_workers=2'] + store.flags + FLAGS)
        _check_same_as_local(store, local, result)
    assert foreign == []
    assert result.manifest['totals']['examples'] > 0


def test_gcs_build_matches_local_build(local, monkeypatch, tmp_path):
    """A GCS emulator, the in-process DirectRunner."""
    with gcs_store(monkeypatch, str(tmp_path / 'server')) as store, loopback_only() as foreign:
        assert store.put_tree(local[0], 'corpus') == 1 + 4
        result = run([f'--input={store.url("corpus")}', f'--output={store.url("dataset")}',
                      '--preset=direct'] + store.flags + FLAGS)
        _check_same_as_local(store, local, result)
    assert foreign == []
