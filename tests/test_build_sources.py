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
    # Both readable training tracks become the reserve; validation and test tracks lack strings
    # and take them from Track00001 (the only track with a String Ensemble).
    result = run([f'--input={root}', f'--output={out}', '--source=slakh', '--split-from=source',
                  '--fill-missing=reserve', '--reserve-fraction=0.99', '--target-stem=strings',
                  '--target-label=Distortion Guitar', '--target-label=string ensemble 1'] + QUICK)
    _assert_valid(result)
    rows = _rows(out)
    assert {(r['title'], r['split']) for r in rows} == {('Track00004', 'validation'), ('Track00005', 'test')}
    assert {r['target_label'] for r in rows} == {'Distortion Guitar', 'String Ensemble 1'}
    for row in rows:
        assert row['source'] == 'slakh' and row['artist'] is None
        if row['target_stem'] == 'strings':
            assert row['donors'] == ['strings<-Track00001/S05']
            assert row['target_labels'] == ['String Ensemble 1', 'Strings (continued)']
        else:
            assert row['target_labels'] == ['Distortion Guitar', 'Guitar']
    assert result.counters['SetAsideReserveFn.songs_reserved'] == 2
    assert result.counters['FillFromReserveFn.stems_filled'] == 2
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
