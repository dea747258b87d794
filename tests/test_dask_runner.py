"""The DaskRunner (runners/dask.py) on dask.distributed LocalClusters bound to 127.0.0.1."""
import glob
import hashlib
import json
import os
import signal
import threading
import time

import apache_beam as beam
import pytest
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.build import run
from runners.dask import NAME
from tests.corpus import three_songs, write_song

pytest.importorskip('distributed')


class _Split(beam.DoFn):
    """Multiples of 3 to a tagged output, the rest to the main one; one marker per bundle."""

    def __init__(self):
        self.seen = Metrics.counter('Split', 'seen')

    def process(self, x):
        self.seen.inc()
        yield beam.pvalue.TaggedOutput('three', x) if x % 3 == 0 else x

    def finish_bundle(self):
        yield WindowedValue(-1, -1, [GlobalWindow()])


def _collect(path):
    return beam.Map(lambda x, p=path: open(p, 'a').write(json.dumps(x) + '\n'))


def _lines(path):
    return sorted(json.loads(line) for line in open(path))


def test_primitives_tags_bundles_side_inputs_groups_and_counters(tmp_path):
    out = {name: str(tmp_path / name) for name in ('groups', 'joined', 'three')}
    options = PipelineOptions([f'--runner={NAME}', '--dask-workers=2', '--dask_npartitions=3'])
    with beam.Pipeline(options=options) as p:
        split = (p | beam.Create(range(20)) | beam.Reshuffle()
                 | beam.ParDo(_Split()).with_outputs('three', main='rest'))
        total = split.three | beam.CombineGlobally(sum)
        split.three | 'Three' >> _collect(out['three'])
        groups = (split.rest | beam.Filter(lambda x: x >= 0) | beam.Map(lambda x: ('odd' if x % 2 else 'even', x))
                  | beam.GroupByKey() | beam.MapTuple(lambda k, v: [k, sorted(v)]))
        groups | 'WithTotal' >> beam.Map(lambda kv, t: kv + [t], beam.pvalue.AsSingleton(total)) \
            | 'Groups' >> _collect(out['groups'])
        markers = split.rest | beam.Filter(lambda x: x < 0) | beam.Map(lambda x: ('odd', x))
        ({'markers': markers, 'extra': p | 'Extra' >> beam.Create([('odd', 0), ('none', 1)])}
         | beam.CoGroupByKey() | beam.MapTuple(lambda k, v: [k, len(v['markers']), sorted(v['extra'])])
         | 'Joined' >> _collect(out['joined']))
    # Every sink ran, tagged outputs went only to their consumers, groups met across processes.
    assert _lines(out['three']) == [0, 3, 6, 9, 12, 15, 18]
    assert _lines(out['groups']) == [['even', [2, 4, 8, 10, 14, 16], 63], ['odd', [1, 5, 7, 11, 13, 17, 19], 63]]
    # finish_bundle's output kept: one marker per bundle, 3 bundles.
    assert _lines(out['joined']) == [['none', 0, [1]], ['odd', 3, [0]]]
    counters = p.result.metrics().query()['counters']
    assert [(c.key.metric.namespace, c.key.metric.name, c.committed) for c in counters] == [('Split', 'seen', 20)]


def _file_hashes(root):
    """sha256 of every file of the dataset but the run's own reports (counters, the report page)."""
    return {os.path.relpath(p, root): hashlib.sha256(open(p, 'rb').read()).hexdigest()
            for p in glob.glob(f'{root}/**/*', recursive=True)
            if os.path.isfile(p) and os.path.basename(p) not in ('counters.json', 'manifest.json')
            and not os.path.relpath(p, root).startswith('report')}


def _manifest(root):
    manifest = json.load(open(f'{root}/manifest.json'))
    manifest['options'] = {k: v for k, v in manifest['options'].items() if k not in ('input', 'output', 'preset')}
    return manifest


# Three songs of 3 s, guitar target, short windows: a build of a few dozen segments.
_FLAGS = ['--codec-weights=random', '--chunk-seconds=1.28', '--encode-margin-seconds=0.32', '--assortments=2',
          '--max-context-stems=2', '--target-stem=guitar', '--augmentations=1', '--shard-examples=5']


def test_errors_land_in_the_error_log_on_dask(tmp_path):
    root = str(tmp_path / 'in')
    write_song(root, 'Ana', 'good', 1)
    write_song(root, 'Bo', 'bad', 2, extra={'Vocals.wav': b'RIFF\x00\x00garbage'})
    out = str(tmp_path / 'out')
    run([f'--input={root}', f'--output={out}', '--codec-weights=random', '--chunk-seconds=1.28',
         '--encode-margin-seconds=0.32', '--assortments=1', '--augmentations=0', '--target-stem=guitar',
         '--preset=dask-local', '--dask-workers=2'])
    errors = [json.loads(line) for path in glob.glob(f'{out}/errors/*') for line in open(path)]
    assert [(e['stage'], e['input'].rsplit('::', 1)[-1], e['error_type']) for e in errors] == \
        [('decode', 'bad/Vocals.wav', 'AudioDecodeError')], errors
    assert json.load(open(f'{out}/manifest.json'))['totals']['examples'] > 0


def test_build_on_two_workers_equals_the_direct_runners_though_a_worker_is_killed(tmp_path):
    """Two worker processes: the shards and manifest are byte-identical to the DirectRunner's, and a
    worker SIGKILLed while encoding is survived (its tasks rerun) with nothing lost or duplicated."""
    from distributed import Client, LocalCluster
    corpus = three_songs(str(tmp_path / 'in'))
    direct = run([f'--input={corpus}', f'--output={tmp_path / "direct"}'] + _FLAGS)
    out = str(tmp_path / 'dask')
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host='127.0.0.1',
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = sorted(client.run(os.getpid).values())
        killed = []

        def kill_one_worker_once_encoding_starts():
            deadline = time.time() + 300
            while time.time() < deadline and not killed:
                if glob.glob(f'{out}/**/*.npz', recursive=True):
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                time.sleep(0.2)

        killer = threading.Thread(target=kill_one_worker_once_encoding_starts, daemon=True)
        killer.start()
        result = run([f'--input={corpus}', f'--output={out}', f'--runner={NAME}',
                      f'--dask_client_address={cluster.scheduler_address}'] + _FLAGS)
        killer.join()
        assert killed, 'the build ended before a worker could be killed'
        assert pids[0] not in client.run(os.getpid).values()
    assert _file_hashes(out) == _file_hashes(direct.output)
    assert _manifest(out) == _manifest(direct.output)
    assert result.counters['LoadStemsFn.stems_decoded'] == direct.counters['LoadStemsFn.stems_decoded']
