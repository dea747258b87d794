"""A full build per corpus source, on generated trees, ends in a valid dataset."""
import glob
import os

import pyarrow.parquet as pq

from pipelines.build import main, run
from pipelines.verify import run_checks, scan_dataset
from schemas.manifest import read_errors
from tests.conftest import FAST_FLAGS
from tests.sources.fixtures import make_folders, make_moisesdb, make_musdb_stems, make_slakh

QUICK = FAST_FLAGS + ['--augmentations=0', '--assortments=1']   # one example family per target


def _rows(root):
    return [row for path in sorted(glob.glob(f'{root}/parquet/*/*.parquet')) for row in pq.read_table(path).to_pylist()]


def _assert_valid(result):
    failed = [(name, message) for name, ok, message in run_checks(scan_dataset(result.output)) if not ok]
    assert not failed, failed
    assert result.manifest['totals']['examples'] > 0


def test_slakh_source_splits_target_labels_and_fill_from_reserve(tmp_path):
    root = str(tmp_path / 'slakh')
    make_slakh(root, marker=str(tmp_path / 'pwned'))
    out = str(tmp_path / 'out')
    # Reserve groups at fraction 0.5: Track00007 (train) and Track00005 (test). Track00004
    # (validation) lacks strings and its split has no reserve: it stays unfilled, never taking
    # the training tracks' strings.
    result = run([f'--input={root}', f'--output={out}', '--source=slakh', '--split-from=source',
                  '--fill-missing=reserve', '--reserve-fraction=0.5', '--target-stem=strings',
                  '--target-label=Distortion Guitar', '--target-label=string ensemble 1'] + QUICK)
    _assert_valid(result)
    rows = _rows(out)
    assert {(r['title'], r['split']) for r in rows} == {('Track00001', 'train'), ('Track00004', 'validation')}
    assert all(row['source'] == 'slakh' and row['artist'] is None and row['donors'] == [] for row in rows)
    assert {r['target_label'] for r in rows if r['title'] == 'Track00001'} >= {'String Ensemble 1'}
    assert result.counters['SetAsideReserveFn.songs_reserved'] == 2
    assert result.counters.get('FillFromReserveFn.stems_filled', 0) == 0
    assert result.counters['FillFromReserveFn.songs_unfillable'] >= 1
    errors = {(e['stage'], os.path.basename(e['input'])) for e in read_errors(out)}
    assert errors == {('read', 'Track00002'), ('read', 'Track00003')}
    assert not os.path.exists(tmp_path / 'pwned')


def test_musdb_stem_mp4_source(tmp_path):
    root = str(tmp_path / 'musdb')
    make_musdb_stems(root)
    out = str(tmp_path / 'out')
    result = run([f'--input={root}', f'--output={out}', '--source=musdb', '--split-from=source'] + QUICK)
    _assert_valid(result)
    rows = _rows(out)
    assert {(r['artist'], r['split']) for r in rows} == {('Actions', 'validation'), ('Ana Lu', 'train'),
                                                         ('Bo Diddly', 'test')}
    assert {r['target_label'] for r in rows} == {'bass'} and not read_errors(out)


def test_moisesdb_source_keeps_bleed(tmp_path):
    root = str(tmp_path / 'moises')
    make_moisesdb(root)
    out = str(tmp_path / 'out')
    result = run([f'--input={root}', f'--output={out}', '--source=moisesdb'] + QUICK)
    _assert_valid(result)
    rows = _rows(out)
    assert {r['artist'] for r in rows} == {'Cy Twombly Band', 'Di Project'}
    guitar = [r for r in rows if r['target_stem'] == 'guitar']
    assert guitar and all(r['bleed_stems'][0] == 'guitar' for r in guitar)
    assert all(r['target_labels'] == ['guitar', 'clean_electric_guitar', 'distorted_electric_guitar'] for r in guitar)
    assert len(read_errors(out)) == 4     # the fixture's four quirks, each logged


def test_folders_source_and_options_it_refuses(tmp_path, capsys):
    root = str(tmp_path / 'folders')
    labels = make_folders(root)
    out = str(tmp_path / 'out')
    result = run([f'--input={root}', f'--output={out}', '--source=folders', '--target-stem=mix'] + QUICK)
    _assert_valid(result)
    rows = _rows(out)
    assert {(r['title'], r['target_label']) for r in rows} == set(labels.items())
    assert all(r['target_stem'] == 'mix' and r['context_stems'] == [] for r in rows)
    for flags in (['--split-from=source'], ['--fill-missing=reserve']):
        assert main([f'--input={root}', f'--output={tmp_path / "x"}', '--source=folders'] + QUICK + flags) == 2
        assert '--source=folders' in capsys.readouterr().err
