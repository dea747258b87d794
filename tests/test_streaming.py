"""Continuous mode (--streaming): a dataset that grows as archives land, on the local runner;
the same graph in fixed windows on Beam's streaming DirectRunner; the Dataflow job's graph."""
import glob
import logging
import os
import shutil
import signal
import threading
import time

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from pipelines.build import run
from pipelines.graph import manifest_info
from pipelines.options import parse_args
from pipelines.stream import unbounded_pipeline
from pipelines.stream_graph import windowed_graph
from pipelines.verify import run_checks, scan_dataset
from runners.registry import with_preset
from schemas.manifest import dataset_counters, read_counters, read_errors, read_manifest
from schemas.reader import open_dataset
from schemas.windows import archive_item, list_parts, read_parts, window_of
from tests.conftest import FAST_FLAGS
from tests.corpus import write_song
from tests.object_stores import loopback_only
from transforms.split import parse_ratios, split_of
from transforms.tasks.registry import task_class
from transforms.write_window import WindowNamer

STREAM = ['--streaming', '--watch-interval=0.3', '--window-seconds=1']


def _flags(corpus, out):
    """FAST_FLAGS, lighter still: one target, no augmentation, pinned threads."""
    return [f'--input={corpus}', f'--output={out}', '--codec-threads=1', '--augmentations=0',
            '--target-stem=guitar'] + [f for f in FAST_FLAGS if not f.startswith(('--augmentations', '--target-stem'))]


def _song(corpus, artist, title, seed):
    return write_song(corpus, artist, title, seed, seconds=2.0)


def _ledger(out) -> dict:
    """{archive path: ledger entry} over every completed window."""
    return {a['path']: a for part in read_parts(out) for a in part['archives']}


def _wait_for(paths, out, thread):
    deadline = time.time() + 300
    while not set(paths) <= set(_ledger(out)):
        assert thread.is_alive() and time.time() < deadline, f'{paths} never reached a window'
        time.sleep(0.1)


def _rows(out) -> list:
    return [row for path in sorted(glob.glob(f'{out}/parquet/*/*.parquet')) for row in pq.read_table(path).to_pylist()]


def _codes(rows) -> dict:
    return {r['example_id']: (r['context_codes'], r['target_codes']) for r in rows}


class Build(threading.Thread):
    def __init__(self, argv):
        super().__init__(daemon=True)
        self.argv, self.result, self.error = argv, None, None

    def run(self):
        try:
            self.result = run(self.argv)
        except BaseException as e:   # reported by the test that joins
            self.error = e


@pytest.fixture(scope='module')
def streamed(tmp_path_factory):
    """A streaming build started on an empty folder, fed three songs at three times (two by Hal),
    a corrupt archive and a copy of the first song under another name; stops when idle."""
    base = tmp_path_factory.mktemp('stream')
    corpus, out = str(base / 'in'), str(base / 'out')
    os.makedirs(corpus)
    build = Build(_flags(corpus, out) + STREAM + ['--stop-after-idle=3'])
    build.start()
    first = _song(corpus, 'Hal', 'one', 1)
    _wait_for([first], out, build)
    second = _song(corpus, 'Hal', 'two', 2)
    corrupt = os.path.join(corpus, 'Cy', 'broken.zip')
    os.makedirs(os.path.dirname(corrupt))
    with open(first, 'rb') as f, open(corrupt, 'wb') as g:
        g.write(f.read()[:5000])
    _wait_for([second, corrupt], out, build)
    third = _song(corpus, 'Dee', 'three', 3)
    copy = shutil.copy(first, os.path.join(corpus, 'Hal', 'one (copy).zip'))
    _wait_for([third, copy], out, build)
    build.join(300)
    assert not build.is_alive() and build.error is None, build.error
    return dict(corpus=corpus, out=out, result=build.result, songs=[first, second, third], corrupt=corrupt, copy=copy)


def test_every_song_once_corrupt_in_errors_duplicate_counted(streamed):
    out, result = streamed['out'], streamed['result']
    rows = _rows(out)
    assert {r['title'] for r in rows} == {'one', 'two', 'three'}
    assert len({r['song_id'] for r in rows}) == 3 and len(_codes(rows)) == len(rows) > 0
    ledger = _ledger(out)
    assert ledger[streamed['copy']]['duplicate_of'] == streamed['songs'][0]
    assert ledger[streamed['copy']]['song_id'] == ledger[streamed['songs'][0]]['song_id']
    assert [ledger[p]['duplicate_of'] for p in streamed['songs']] == [None] * 3
    streaming = read_manifest(out)['streaming']
    assert (streaming['archives_ingested'], streaming['duplicates_skipped'], streaming['archives_failed']) == (3, 1, 1)
    assert result.counters['FirstCopyFn.archives_duplicate'] == 1
    assert result.counters['FirstCopyFn.archives_new'] == 3
    counters = read_manifest(out)['counters']     # the dataset's counters, summed over windows
    assert counters == dataset_counters(read_counters(out))
    assert counters['FirstCopyFn.archives_duplicate'] == 1 and counters['errors.read'] == 1
    assert counters['LoadStemsFn.stems_decoded'] == 3 * 4 and not any(k.endswith('_ms') for k in counters)
    errors = read_errors(out)
    assert [(e['stage'], e['input']) for e in errors] == [('read', streamed['corrupt'])]
    assert 'not a readable zip archive' in errors[0]['message']


def test_each_window_has_its_part_and_the_manifest_lists_them(streamed):
    out = streamed['out']
    manifest, parts = read_manifest(out), read_parts(out)
    assert len(parts) >= 3 and manifest['streaming']['parts'] == list_parts(out)
    windows = [p['window'] for p in parts]
    assert windows == sorted(windows) and [p['sequence'] for p in parts] == list(range(1, len(parts) + 1))
    listed = {s['path'] for split in manifest['splits'].values() for shards in split['shards'].values() for s in shards}
    in_parts = {s['path'] for p in parts for split in p['splits'].values() for shards in split['shards'].values()
                for s in shards}
    on_disk = {os.path.relpath(p, out) for p in glob.glob(f'{out}/webdataset/*/*') + glob.glob(f'{out}/parquet/*/*')}
    assert listed == in_parts == on_disk and {window_of(p) for p in on_disk} <= set(windows)
    assert sum(p['totals']['examples'] for p in parts) == manifest['totals']['examples'] == len(_rows(out))
    assert not os.path.exists(f'{out}/_work')


def test_split_follows_the_artist_across_windows(streamed):
    rows = _rows(streamed['out'])
    ratios = parse_ratios('0.82,0.12,0.06')
    assert {(r['title'], r['split']) for r in rows} == {
        ('one', split_of('artist:hal', ratios)), ('two', split_of('artist:hal', ratios)),
        ('three', split_of('artist:dee', ratios))}
    assert split_of('artist:hal', ratios) != split_of('artist:dee', ratios)   # two splits in play


def test_verify_and_the_reader_see_every_example(streamed):
    out = streamed['out']
    failed = [(name, message) for name, ok, message in run_checks(scan_dataset(out)) if not ok]
    assert not failed, failed
    manifest = read_manifest(out)
    seen = {item['example_id'] for split in manifest['splits']
            for item in open_dataset(out, split=split, shuffle_buffer=0)}
    assert seen == set(_codes(_rows(out)))


def test_batch_build_of_the_final_folder_gives_the_same_examples(streamed, tmp_path):
    batch = run(_flags(streamed['corpus'], str(tmp_path / 'batch')))
    assert _codes(_rows(batch.output)) == _codes(_rows(streamed['out']))


def test_a_second_run_ingests_nothing_and_batch_builds_refuse_the_output(streamed):
    out = streamed['out']
    with open(f'{out}/manifest.json', 'rb') as f:
        before = f.read()
    parts = list_parts(out)
    again = run(_flags(streamed['corpus'], out) + STREAM + ['--stop-after-idle=1'])
    assert list_parts(out) == parts and again.counters == {}
    with open(f'{out}/manifest.json', 'rb') as f:
        assert f.read() == before
    with pytest.raises(ValueError, match='written in windows'):
        run(_flags(streamed['corpus'], out))


class _Taken(logging.Handler):
    def __init__(self):
        super().__init__()
        self.event = threading.Event()

    def emit(self, record):
        if 'taken into the window' in record.getMessage():
            self.event.set()


def test_a_signal_finishes_the_open_window(tmp_path):
    corpus, out = str(tmp_path / 'in'), str(tmp_path / 'out')
    os.makedirs(corpus)
    taken = _Taken()
    logger = logging.getLogger('pipelines.stream')
    logger.addHandler(taken)
    logger.setLevel(logging.INFO)

    def drop_then_signal():
        _song(corpus, 'Dee', 'late', 7)
        if taken.event.wait(120):
            os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=drop_then_signal, daemon=True).start()
    before = signal.getsignal(signal.SIGTERM)
    try:   # an hour-long window: only the signal closes it
        result = run(_flags(corpus, out) + ['--streaming', '--watch-interval=0.2', '--window-seconds=3600'])
    finally:
        logger.removeHandler(taken)
    assert taken.event.is_set()
    assert [p['ingested'] for p in read_parts(out)] == [1] and result.manifest['totals']['examples'] > 0
    assert signal.getsignal(signal.SIGTERM) is before    # the handlers are put back


def test_fixed_windows_on_the_streaming_direct_runner(streamed, tmp_path):
    """The Dataflow graph after MatchContinuously, fed by a TestStream: duplicates in state, two
    fixed windows, the same examples as the local driver's."""
    out, songs = str(tmp_path / 'out'), streamed['songs']
    args, options = parse_args(_flags(streamed['corpus'], out) + ['--window-seconds=10'])
    options.view_as(StandardOptions).streaming = True
    task = task_class('continuation').from_args(args, options)
    listed = lambda path, t: TimestampedValue(archive_item(path, os.path.getsize(path), 1.0), t)
    pipeline = beam.Pipeline(runner=BundleBasedDirectRunner(), options=options)
    stream = (TestStream().advance_watermark_to(0).add_elements([listed(songs[0], 1)])
              .advance_watermark_to(12).add_elements([listed(streamed['copy'], 13), listed(songs[2], 14)])
              .advance_watermark_to_infinity())
    windowed_graph(pipeline | stream, args, task, manifest_info(args, task), {}, WindowNamer(5))
    pipeline.run().wait_until_finish()
    parts = read_parts(out)
    assert [p['window'] for p in parts] == ['w000005-19700101T000000Z', 'w000005-19700101T000010Z']
    assert [(p['ingested'], p['duplicates']) for p in parts] == [(1, 0), (1, 1)]
    rows = _rows(streamed['out'])
    assert _codes(_rows(out)) == _codes(r for r in rows if r['title'] in ('one', 'three'))


def test_dataflow_streaming_preset_builds_the_standard_graph():
    argv = ['--preset=dataflow-streaming', '--project=acme', '--region=europe-west4',
            '--temp_location=gs://acme-tmp/beam', '--input=gs://corpus/stems', '--output=gs://datasets/guitar',
            '--codec-weights=random', '--chunk-seconds=10.24', '--window-seconds=600']
    args, options = parse_args(with_preset(argv))
    assert options.view_as(StandardOptions).streaming and options.get_all_options()['enable_streaming_engine']
    assert options.get_all_options()['runner'] == 'DataflowRunner'
    with loopback_only() as foreign:   # built, not run: Dataflow's own checks would look at the bucket
        pipeline = unbounded_pipeline(args, options, task_class('continuation').from_args(args, options), [],
                                      runner=BundleBasedDirectRunner())
        labels = {t.unique_name for t in pipeline.to_runner_api().components.transforms.values()}
        with pytest.raises(ValueError, match='drained'):
            run(argv + ['--stop-after-idle=5'])
    assert foreign == []
    for stage in ('WatchArchives/Match0/Watch', 'SkipDuplicates/FirstSeen', 'WindowSongs', 'LoadStems',
                  'ContinuationTask/EncodeChunks', 'WriteWindow/WriteShards', 'WriteWindow/PublishPart'):
        assert any(label.startswith(stage) for label in labels), stage
