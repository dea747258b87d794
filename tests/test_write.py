import io
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from schemas.continuation import ContinuationParquetWriter, ContinuationWebDatasetWriter, Example, ExampleMeta
from schemas.parquet import codes_of
from schemas.shards import AtomicFile, shard_path
from schemas.webdataset import read_samples
from transforms.write import shard_count


def _example(i, flac=None):
    meta = ExampleMeta(example_id=f'id{i:03d}', song_id='s', artist='A', title='t', source='stems',
                       split='train', target_stem='bass', target_instrument='bass', context_stems=('drums',),
                       assortment=0, variant=0, chunk_index=i, start_seconds=i * 1.28, duration_seconds=1.28,
                       mix_gain=1.0, codec='encodec_32khz', codec_weights='random:0', frame_rate=50.0,
                       sample_rate_hz=32000, context_waveform_id='c', target_waveform_id='t')
    rng = np.random.default_rng(i)
    return Example(meta=meta, context_codes=rng.integers(0, 2048, (4, 64)).astype(np.int16),
                   target_codes=rng.integers(0, 2048, (4, 64)).astype(np.int16), context_flac=flac, target_flac=flac)


def test_webdataset_and_parquet_round_trip(tmp_path):
    examples = [_example(i) for i in range(5)]
    tar, parquet = str(tmp_path / shard_path('webdataset', 'train', 0)), str(tmp_path / 'p.parquet')
    os.makedirs(os.path.dirname(tar))
    for writer_class, path in ((ContinuationWebDatasetWriter, tar), (ContinuationParquetWriter, parquet)):
        with writer_class(path) as writer:
            for e in examples:
                writer.write(e)
        assert writer.examples == 5 and writer.bytes == os.path.getsize(path) and len(writer.sha256) == 64
    samples = list(read_samples(tar))
    assert [s['__key__'] for s in samples] == [e.example_id for e in examples]
    for sample, example in zip(samples, examples):
        assert sample['target.npy'].dtype == np.int16
        assert np.array_equal(sample['context.npy'], example.context_codes)
        assert sample['json']['context_stems'] == ['drums']
    table = pq.read_table(parquet)
    assert table.num_rows == 5 and str(table.schema.field('target_codes').type) == 'list<element: list<element: int16>>'
    assert np.array_equal(codes_of(table.column('target_codes')[2].as_py()), examples[2].target_codes)
    leftovers = [f for _, _, files in os.walk(tmp_path) for f in files if '.tmp-' in f]
    assert leftovers == []


def test_tar_bytes_are_reproducible(tmp_path):
    paths = [str(tmp_path / f'{n}.tar') for n in 'ab']
    for path in paths:
        with ContinuationWebDatasetWriter(path) as writer:
            writer.write(_example(1, flac=b'fLaC'))
    assert open(paths[0], 'rb').read() == open(paths[1], 'rb').read()


def test_atomic_file_leaves_nothing_on_failure(tmp_path):
    path = str(tmp_path / 'shard.tar')
    with pytest.raises(RuntimeError):
        with AtomicFile(path) as handle:
            handle.write(b'partial')
            raise RuntimeError('killed')
    assert os.listdir(tmp_path) == []
    with AtomicFile(path) as handle:
        handle.write(b'done')
    assert os.listdir(tmp_path) == ['shard.tar']


def test_shard_count_follows_both_limits():
    assert shard_count(0, 0, 1000, None) == 1
    assert shard_count(2500, 10, 1000, None) == 3
    assert shard_count(10, 5e9, 1000, 1000) == 5


def test_tar_shards_are_the_bytes_webdataset_tarwriter_writes(tmp_path):
    import webdataset
    from schemas.webdataset import WebDatasetWriter, npy_bytes
    samples = [{'__key__': f'k{i:02d}', 'json': b'{"i": %d}' % i, 'target.npy': npy_bytes(np.arange(i, i + 900)),
                'context.flac': b'\x00' * (700 + i)} for i in range(5)]
    ours = str(tmp_path / 'ours.tar')
    with WebDatasetWriter(ours, sample_fn=lambda s: s) as writer:
        for sample in samples:
            writer.write(sample)
    theirs = io.BytesIO()
    tar = webdataset.TarWriter(theirs, encoder=False, mtime=0.0, user='', group='', mode=0o444)
    for sample in samples:
        tar.write(sample)
    tar.close()
    assert open(ours, 'rb').read() == theirs.getvalue() and writer.examples == 5
    assert [s['__key__'] for s in read_samples(ours)] == [s['__key__'] for s in samples]
    with pytest.raises(ValueError, match='k00.json: a sample member must be bytes, not str'):
        with WebDatasetWriter(str(tmp_path / 'bad.tar'), sample_fn=lambda s: dict(s, json='text')) as writer:
            writer.write(samples[0])
