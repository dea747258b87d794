"""Resumable, idempotent, atomic runs."""
import glob
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pipelines.build import run
from tests.conftest import FAST_FLAGS, ROOT
from tests.corpus import write_song


def _flags(corpus):
    """FAST_FLAGS, lighter still: one target, no augmentation, pinned threads."""
    return [f'--input={corpus}', '--codec-threads=1', '--augmentations=0', '--target-stem=guitar'] + \
        [f for f in FAST_FLAGS if not f.startswith(('--augmentations', '--target-stem'))]


def _dataset_hashes(root):
    """sha256 of every shard, and the manifest without the output path (counters.json reports
    how the run went, not what it built)."""
    files = glob.glob(f'{root}/webdataset/*/*') + glob.glob(f'{root}/parquet/*/*')
    hashes = {os.path.relpath(p, root): hashlib.sha256(open(p, 'rb').read()).hexdigest() for p in files}
    manifest = json.load(open(f'{root}/manifest.json'))
    del manifest['options']['output']
    return hashes, manifest


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp('resume') / 'in'
    for i, artist in enumerate(['Ana', 'Bo', 'Cy', 'Di']):
        write_song(str(root), artist, f'song{i}', 40 + i)
    return str(root)


def test_killed_build_resumes_to_identical_output(corpus, tmp_path):
    flags = _flags(corpus)
    reference = str(tmp_path / 'reference')
    run(flags + [f'--output={reference}'])
    assert not os.path.exists(f'{reference}/_work'), 'the work folder is removed after a complete run'

    out = str(tmp_path / 'out')
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, '-m', 'pipelines.build', f'--output={out}',
                             '--direct_running_mode=multi_processing', '--direct_num_workers=2'] + flags,
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(glob.glob(f'{out}/_work/codes/*.npz')) < 3 and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(f'{out}/manifest.json'), 'killed before it finished'
    assert not glob.glob(f'{out}/webdataset/*/*.tar'), 'no shard under a final name'
    cached = len(glob.glob(f'{out}/_work/codes/*.npz'))
    assert cached >= 3

    resumed = run(flags + [f'--output={out}', '--resume'])
    assert resumed.counters['EncodeChunksFn.segments_reused'] >= cached
    assert _dataset_hashes(out) == _dataset_hashes(reference)

    again = run(flags + [f'--output={out}', '--resume'])       # complete: nothing to do
    assert again.counters == {} and _dataset_hashes(out) == _dataset_hashes(reference)


def test_other_options_into_a_used_output_are_refused(corpus, tmp_path, capsys):
    flags = _flags(corpus) + [f'--output={tmp_path / "out"}']
    run(flags + ['--progress-seconds=0.5'])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith('progress: ')]
    assert lines and 's of audio encoded' in lines[-1]
    with pytest.raises(ValueError, match='built with other options'):
        run(flags + ['--assortments=1'])
    rebuilt = run(flags + ['--assortments=1', '--overwrite'])
    assert rebuilt.manifest['options']['assortments'] == 1


def test_segments_stored_during_the_run_are_not_reused_by_it(tmp_path):
    """A task run again within one build (its Dask worker was killed after the encoder stored a
    segment) must split as its first attempt did: only files stored before the graph was
    built are reused."""
    import time
    from types import SimpleNamespace
    from apache_beam import pvalue
    from transforms.encode import SplitSegmentsFn
    from transforms.encode_store import segment_file
    segments = [SimpleNamespace(frames=10, windows=(0, 1)), SimpleNamespace(frames=10, windows=(2,))]
    chunked = SimpleNamespace(song_id='s', waveform_id='w', segments=segments, window_audio={})
    earlier = segment_file(str(tmp_path), 's', 'w', segments[0])
    open(earlier, 'wb').close()                        # stored by an earlier run
    os.utime(earlier, (time.time() - 60, time.time() - 60))
    fn = SplitSegmentsFn(32000, 50.0, False, str(tmp_path))
    time.sleep(0.05)                                   # past the file system clock's tick
    open(segment_file(str(tmp_path), 's', 'w', segments[1]), 'wb').close()   # stored during this run
    import transforms.encode as encode
    original, encode.load_encoded = encode.load_encoded, lambda path, *key: ('loaded', path)
    try:
        out = list(fn.process(chunked))
    finally:
        encode.load_encoded = original
    reused = [o.value for o in out if isinstance(o, pvalue.TaggedOutput)]
    assert reused == [('loaded', earlier)] and [o for o in out if not isinstance(o, pvalue.TaggedOutput)] == \
        [(('s', 'w'), segments[1])]
