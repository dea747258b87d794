"""The command line: unknown flags are errors naming the closest flag; one console script."""
import importlib.metadata
import os
import re

import pytest

from pipelines import build, cli
from pipelines.flags import UnknownFlag
from pipelines.options import parse_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('flag, closest', [
    ('--target_stem=guitar', '--target-stem'), ('--assortment=2', '--assortments'),
    ('--augmentation', '--augmentations'), ('--direct_num_worker=2', '--direct_num_workers'),
    ('--codec-runtim=openvino', '--codec-runtime'), ('--dask_worker=2', '--dask-workers')])
def test_a_mistyped_flag_names_the_closest_valid_one(flag, closest, capsys):
    with pytest.raises(UnknownFlag, match=f'unknown flag {re.escape(flag.split("=")[0])}; did you mean {closest}'):
        parse_args(['--demo', flag])
    assert build.main(['--demo', flag]) == 2
    assert f'did you mean {closest}?' in capsys.readouterr().err


def test_beams_own_flags_and_values_pass():
    args, options = parse_args(['--demo', '--runner=DirectRunner', '--direct_num_workers', '2',
                                '--s3_endpoint_url=http://127.0.0.1:9', '--assortments=3'])
    assert args.assortments == 3 and options.get_all_options()['direct_num_workers'] == 2
    with pytest.raises(UnknownFlag, match="unexpected argument 'stray'"):
        parse_args(['--demo', 'stray'])
    with pytest.raises(UnknownFlag, match='unknown flag --qqqqqqqq; python -m pipelines.build --help lists them'):
        parse_args(['--qqqqqqqq'])


@pytest.mark.parametrize('tool', ['verify', 'report', 'query'])
def test_tools_refuse_unknown_flags_with_exit_2(tool, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([tool, 'some-dataset', '--audio=x.wav', '--seeed=2'] if tool == 'query' else
                 [tool, 'some-dataset', '--seeed=2'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'unknown flag --seeed' in err and (tool != 'verify' or 'did you mean --seed?' in err)


def test_one_console_script_runs_every_tool(tmp_path, capsys):
    with open(os.path.join(ROOT, 'setup.py')) as f:
        assert "'stemforge = pipelines.cli:main'" in f.read()
    scripts = {e.name: e.value for e in importlib.metadata.entry_points(group='console_scripts')}
    if 'stemforge' in scripts:     # installed (make test installs the package in development mode)
        assert scripts['stemforge'] == 'pipelines.cli:main'
    assert cli.main(['--version']) == 0
    assert re.fullmatch(r'stemforge \d+\.\d+\.\d+\n', capsys.readouterr().out)
    assert cli.main(['verfy', str(tmp_path)]) == 2
    assert 'did you mean verify?' in capsys.readouterr().err
    assert cli.main(['verify', str(tmp_path)]) == 1        # no manifest: verify's own FAIL line
    assert 'FAIL  manifest' in capsys.readouterr().out
    assert cli.main([]) == 2 and cli.main(['--help']) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS)


def test_a_missing_library_is_named_with_its_flag_before_the_build(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'matplotlib', None)     # import matplotlib raises ImportError
    monkeypatch.setitem(sys.modules, 'av', None)
    out = tmp_path / 'out'
    with pytest.raises(ValueError) as info:
        build.run(['--demo', f'--input={tmp_path / "corpus"}', f'--output={out}', '--report',
                   '--distort-p=0.5', '--distortions=lossy,eq'])
    assert '--report needs matplotlib' in str(info.value) and 'pip install matplotlib' in str(info.value)
    assert '--distortions with lossy needs av' in str(info.value)
    assert not out.exists() and not (tmp_path / 'corpus').exists()
