"""What trainers open without glue: the Hugging Face card (``load_dataset(<dir>)``) and the
audiocraft export (``egs/<split>/data.jsonl`` and the MusicInfo sidecars)."""
import json
import os
import tempfile

import pytest
import soundfile as sf
import yaml

from pipelines.build import run
from tests.conftest import FAST_FLAGS
from tests.corpus import write_song


def load_with_datasets(root: str, manifest: dict, expected: dict = None) -> None:
    """``datasets.load_dataset(root)`` gives every split with examples, with the manifest's counts
    (or ``expected`` rows)."""
    datasets = pytest.importorskip('datasets')
    with tempfile.TemporaryDirectory() as cache:       # a fresh cache: never an earlier build's
        loaded = datasets.load_dataset(root, cache_dir=cache)
        loaded = {split: part.num_rows for split, part in loaded.items()}
    if expected is None:
        expected = {split: stats['examples'] for split, stats in manifest['splits'].items() if stats['examples']}
    assert loaded == expected


def card_header(root: str) -> dict:
    text = open(os.path.join(root, 'README.md'), encoding='utf-8').read()
    assert text.startswith('---\n')
    return yaml.safe_load(text.split('---\n')[1])


def test_the_demo_dataset_has_a_card_that_datasets_loads(demo_dataset):
    result = demo_dataset[0]
    header = card_header(result.output)
    (config,) = header['configs']
    assert config['config_name'] == 'default' and config['default']
    listed = {f['split']: f['path'] for f in config['data_files']}
    assert listed == {split: [s['path'] for s in stats['shards']['parquet']]
                      for split, stats in result.manifest['splits'].items() if stats['examples']}
    features = {f['name']: f for f in header['dataset_info'][0]['features']}
    assert features['target_codes'] == {'name': 'target_codes', 'list': {'list': 'int16'}}
    assert header['license'] == 'other'
    body = open(os.path.join(result.output, 'README.md'), encoding='utf-8').read()
    codec = result.manifest['codec']
    assert f'`{codec["name"]}`' in body and f'codebooks: {codec["codebooks"]} of {codec["codebook_size"]}' in body
    assert 'python -m pipelines.build' in body and '--demo' in body and 'RANDOM codec weights' in body
    load_with_datasets(result.output, result.manifest)


@pytest.fixture(scope='module')
def audiocraft_build(tmp_path_factory):
    base = tmp_path_factory.mktemp('audiocraft')
    write_song(str(base / 'in'), 'Ana', 'one', 1, seconds=2.0)
    write_song(str(base / 'in'), 'Bo', 'two', 2, seconds=2.0)
    return run([f'--input={base / "in"}', f'--output={base / "out"}', '--write-audio', '--export=audiocraft',
                '--split-ratios=0.5,0.5,0'] + FAST_FLAGS + ['--augmentations=0'])


def check_audiocraft(root: str, manifest: dict) -> list:
    """Every egs line parses as audiocraft's AudioMeta, its file exists with that duration and rate,
    and its MusicInfo sidecar sits beside it; returns the lines."""
    lines = []
    for split, stats in manifest['splits'].items():
        path = os.path.join(root, 'egs', split, 'data.jsonl')
        rows = [json.loads(line) for line in open(path, encoding='utf-8')]
        assert len(rows) == stats['examples']
        for row in rows:
            assert set(row) == {'path', 'duration', 'sample_rate', 'amplitude', 'weight', 'info_path'}
            info = sf.info(os.path.join(root, row['path']))
            assert (info.samplerate, round(info.frames / info.samplerate, 6)) == (row['sample_rate'], row['duration'])
            assert 0 < row['amplitude'] <= 1.0
            sidecar = json.load(open(os.path.join(root, os.path.splitext(row['path'])[0] + '.json')))
            assert sidecar['description'] and sidecar['instrument'] and sidecar['name'] and sidecar['title']
            lines.append((split, row, sidecar))
    exported = manifest['exports']
    assert exported['audiocraft-egs']['files'] == 3          # every split, empty when it has no example
    for split in set(('train', 'validation', 'test')) - set(manifest['splits']):
        assert open(os.path.join(root, 'egs', split, 'data.jsonl')).read() == ''
    assert exported['audiocraft-audio']['files'] == 2 * manifest['totals']['examples']
    return lines


def test_continuation_exports_audiocraft_manifests_of_the_target_audio(audiocraft_build):
    lines = check_audiocraft(audiocraft_build.output, audiocraft_build.manifest)
    assert {s for s, _, _ in lines} == {'train', 'validation'}
    descriptions = {i['description'] for _, _, i in lines}
    assert all(' part over ' in d for d in descriptions)
    assert {i['instrument'] for _, _, i in lines} == {'guitar', 'bass'}
    load_with_datasets(audiocraft_build.output, audiocraft_build.manifest)


def test_the_audiocraft_export_needs_the_audio(tmp_path, capsys):
    from pipelines.build import main
    write_song(str(tmp_path / 'in'), 'Ana', 'one', 1)
    assert main([f'--input={tmp_path / "in"}', f'--output={tmp_path / "out"}', '--export=audiocraft'] + FAST_FLAGS) == 2
    assert '--write-audio' in capsys.readouterr().err
    assert main([f'--input={tmp_path / "in"}', f'--output={tmp_path / "out"}', '--export=folders',
                 '--write-audio'] + FAST_FLAGS) == 2
