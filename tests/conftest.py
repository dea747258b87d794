import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope='session', autouse=True)
def no_prism_download():
    """Beam's DirectRunner first tries Prism, which fetches its binary from the network. Stage
    tests run TestPipeline on the DirectRunner: refuse Prism so it falls back, offline, to the
    FnApiRunner (builds name runners.direct.LocalFnApiRunner themselves)."""
    from apache_beam.runners.portability import prism_runner

    def refuse(self, pipeline, options):
        raise RuntimeError('Prism is not used in tests')

    original = prism_runner.PrismRunner.run_pipeline
    prism_runner.PrismRunner.run_pipeline = refuse
    yield
    prism_runner.PrismRunner.run_pipeline = original


@pytest.fixture(scope='session', autouse=True)
def codec_cache(tmp_path_factory):
    """Random-weight codecs are calibrated once per test session, in a temporary cache."""
    path = str(tmp_path_factory.mktemp('codec-cache'))
    os.environ['STEMFORGE_CACHE'] = path
    yield path


# The small geometry pipeline tests use: 1.28 s windows (64 frames at 50 Hz), short margins.
FAST_FLAGS = ['--codec-weights=random', '--chunk-seconds=1.28', '--encode-margin-seconds=0.32',
              '--assortments=2', '--max-context-stems=2', '--target-stem=guitar,bass', '--augmentations=1']


@pytest.fixture(scope='session')
def demo_dataset(tmp_path_factory):
    """The demo dataset, built once per session with --report and 5 examples per shard (so splits
    have several shards); returns (BuildResult, what the build printed)."""
    import contextlib
    import io
    from pipelines.build import run
    base = tmp_path_factory.mktemp('demo-dataset')
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = run(['--demo', f'--input={base / "corpus"}', f'--output={base / "dataset"}',
                      '--shard-examples=5', '--augmentations=0', '--report'])
    return result, printed.getvalue()
