"""The built dataset reads, without conversion, with the readers people already use."""
import glob
import os

import numpy as np
import pyarrow.dataset as ds
import pytest

from schemas.parquet import codes_of


@pytest.fixture(scope='module')
def demo(demo_dataset):
    return demo_dataset[0]


@pytest.fixture(scope='module')
def truth(demo):
    """example id -> (split, target codes) from pyarrow.dataset over every split."""
    table = ds.dataset(os.path.join(demo.output, 'parquet'), format='parquet').to_table(
        columns=['example_id', 'split', 'target_codes'])
    rows = table.to_pylist()
    assert len(rows) == demo.manifest['totals']['examples'] > 0
    return {r['example_id']: (r['split'], codes_of(r['target_codes'])) for r in rows}


def _parquet_files(root, split):
    return sorted(glob.glob(os.path.join(root, 'parquet', split, '*.parquet')))


def _assert_train(demo, truth, ids, target_codes):
    expected = {k for k, (split, _) in truth.items() if split == 'train'}
    assert len(ids) == len(set(ids)) and set(ids) == expected
    for key, codes in zip(ids, target_codes):
        assert np.array_equal(np.asarray(codes, dtype=np.int16), truth[key][1])


def test_duckdb_reads_the_parquet(demo, truth):
    import duckdb
    pattern = os.path.join(demo.output, 'parquet', '*', '*.parquet')
    counts = dict(duckdb.sql(f"SELECT split, count(*) FROM read_parquet('{pattern}') GROUP BY split").fetchall())
    assert counts == {s: st['examples'] for s, st in demo.manifest['splits'].items()}
    rows = duckdb.sql(f"SELECT example_id, target_codes FROM read_parquet('{pattern}') WHERE split = 'train'").fetchall()
    _assert_train(demo, truth, [r[0] for r in rows], [r[1] for r in rows])
    shape = duckdb.sql(f"SELECT DISTINCT len(target_codes), len(target_codes[1]) FROM read_parquet('{pattern}')").fetchall()
    assert shape == [(demo.manifest['codec']['codebooks'], 512)]


def test_pandas_reads_the_parquet(demo, truth):
    import pandas as pd
    frame = pd.concat([pd.read_parquet(p) for p in _parquet_files(demo.output, 'train')])
    _assert_train(demo, truth, list(frame['example_id']), [np.stack(c) for c in frame['target_codes']])


def test_polars_reads_the_parquet(demo, truth):
    import polars as pl
    frame = pl.read_parquet(_parquet_files(demo.output, 'train'))
    _assert_train(demo, truth, frame['example_id'].to_list(), frame['target_codes'].to_list())


def test_hugging_face_datasets_reads_parquet_and_webdataset(demo, truth, tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_DATASETS_OFFLINE', '1')
    import datasets
    parquet = datasets.load_dataset('parquet', data_files={'train': _parquet_files(demo.output, 'train')},
                                    split='train', cache_dir=str(tmp_path / 'hf'))
    _assert_train(demo, truth, parquet['example_id'], parquet['target_codes'])
    tars = sorted(glob.glob(os.path.join(demo.output, 'webdataset', 'train', '*.tar')))
    shards = datasets.load_dataset('webdataset', data_files={'train': tars}, split='train',
                                   cache_dir=str(tmp_path / 'hf'))
    _assert_train(demo, truth, shards['__key__'], shards['target.npy'])
    assert all(meta['example_id'] == key for meta, key in zip(shards['json'], shards['__key__']))
