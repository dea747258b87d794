"""Continuous mode's parts without audio: window names, the watcher, duplicates, manifest parts
and their merge, the driver's windows and clean stops, and the options it refuses."""
import json
import os
from types import SimpleNamespace

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.stream import StreamDriver, check_stream_options, prepare_stream_output, window_start
from schemas.manifest import read_manifest
from schemas.records import SongRef
from schemas.shards import ShardStats, shard_path
from schemas.windows import (ArchiveEntry, DuplicateArchive, build_part, ledger_of, list_parts, orphan_files,
                             publish_part, rebuild_manifest, split_pending, window_name, window_of, write_part)
from transforms.dedup import DUPLICATES, SkipDuplicates
from transforms.sources.watch import ArchiveWatcher

INFO = {'task': 'continuation', 'fingerprint': 'f1', 'options': {}}


def test_window_names_and_the_files_they_mark():
    name = window_name(3, 1735689900.7)
    assert name == 'w000003-20250101T000500Z'
    tar = shard_path('webdataset', 'train', 2, name)
    assert tar == 'webdataset/train/w000003-20250101T000500Z-train-000002.tar'
    assert shard_path('parquet', 'test', 0) == 'parquet/test/part-00000.parquet'   # batch names unchanged
    assert window_of(tar) == window_of(f'errors/{name}.jsonl') == name
    assert window_of('webdataset/train/train-000000.tar') is None


def test_ledger_records_round_trip():
    for record in (ArchiveEntry('/in/A/a.zip', 5, 1.5, 's1', '/in/A/b.zip'), ArchiveEntry('/in/A/c.zip', 0, 2.0),
                   DuplicateArchive('/in/A/b.zip', 's1', '/in/A/a.zip')):
        data = record.to_dict()
        assert type(record).from_dict(data) == record and data == record.to_dict()


def _touch(path, data=b'x', mtime=1000.0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    os.utime(path, (mtime, mtime))
    return path


def test_watcher_takes_settled_new_and_changed_archives_once(tmp_path):
    root = str(tmp_path)
    old = _touch(f'{root}/A/old.zip')
    watcher = ArchiveWatcher(root, {old: (1, 1000.0)})
    new = _touch(f'{root}/A/new.zip', b'xy')
    _touch(f'{root}/A/notes.txt')
    _touch(f'{root}/A/song/stem.wav')                        # folders are not watched
    assert watcher.poll() == [] and watcher.waiting == 1     # seen once: may still be written
    assert watcher.poll() == [(new, 2, 1000.0)]
    assert watcher.poll() == [] and watcher.waiting == 0
    _touch(old, b'xyz', 2000.0)                              # changed: taken again once settled
    _touch(new, b'xyz', 1000.0)                              # still growing
    assert watcher.poll() == []
    _touch(new, b'xyzw', 1000.0)
    assert watcher.poll() == [(old, 3, 2000.0)]
    assert watcher.poll() == [(new, 4, 1000.0)]
    assert ArchiveWatcher(root, {}, settle=False).poll() == [(new, 4, 1000.0), (old, 3, 2000.0)]


def _ref(path, song_id):
    return SongRef(song_id=song_id, artist='A', title=path, source='stems', input_path=path, container='zip',
                   content_sha256=song_id)


@pytest.mark.parametrize('unbounded', [False, True])
def test_skip_duplicates_keeps_one_copy_per_content(unbounded):
    refs = [_ref('/in/A/b.zip', 's1'), _ref('/in/A/a.zip', 's1'), _ref('/in/B/c.zip', 's2'), _ref('/in/B/d.zip', 's3')]
    with TestPipeline() as p:
        out = p | beam.Create(refs) | SkipDuplicates({'s3': '/in/B/old.zip'}, unbounded)
        kept = out.songs | 'Paths' >> beam.Map(lambda r: r.input_path)
        duplicates = out[DUPLICATES] | 'Dups' >> beam.Map(lambda d: (d.path, d.duplicate_of))
        if unbounded:    # state keeps whichever copy comes first
            assert_that(kept | beam.combiners.Count.Globally(), equal_to([2]), label='kept')
            copies = ('/in/A/a.zip', '/in/A/b.zip', '/in/B/d.zip')
            assert_that(duplicates | 'Copies' >> beam.Map(lambda d: d[0] in copies), equal_to([True, True]),
                        label='dups')
        else:            # a window keeps the smallest path
            assert_that(kept, equal_to(['/in/A/a.zip', '/in/B/c.zip']), label='kept')
            assert_that(duplicates, equal_to([('/in/A/b.zip', '/in/A/a.zip'), ('/in/B/d.zip', '/in/B/old.zip')]),
                        label='dups')


def _part(root, sequence, start, split='train', examples=2, archives=(), errors=()):
    name = window_name(sequence, start)
    shard = ShardStats(split=split, format='webdataset', path=shard_path('webdataset', split, 0, name),
                       examples=examples, bytes=10, sha256='ab')
    stats = {split: {'songs': 1, 'examples': examples, 'audio_seconds': 1.5}}
    lines = [json.dumps({'stage': 'read', 'input': e}) for e in errors]
    part = build_part(name, sequence, start, 'f1', [shard], stats, lines, list(archives))
    return write_part(root, part, lines)


def test_parts_merge_into_one_manifest_once_each(tmp_path):
    root = str(tmp_path)
    first = _part(root, 1, 0, archives=[ArchiveEntry('/in/A/a.zip', 5, 1.0, 's1')], errors=['/in/B/bad.zip'])
    publish_part(root, INFO, first)
    publish_part(root, INFO, first)                          # a retried window counts once
    second = _part(root, 2, 300, split='test', archives=[
        ArchiveEntry('/in/A/b.zip', 5, 2.0, 's2'), ArchiveEntry('/in/A/c.zip', 5, 2.0, 's1', '/in/A/a.zip')])
    publish_part(root, INFO, second)
    merged = read_manifest(root)
    assert merged['task'] == 'continuation' and merged['fingerprint'] == 'f1'
    assert merged['totals'] == {'examples': 4, 'songs': 2, 'audio_seconds': 3.0}
    assert merged['streaming'] == {'parts': [first, second], 'windows': 2, 'archives_ingested': 2,
                                   'duplicates_skipped': 1, 'archives_failed': 0}
    assert merged['errors'] == {'path': 'errors/errors.jsonl', 'total': 1, 'by_stage': {'read': 1}}
    with open(f'{root}/errors/errors.jsonl') as f:
        assert [json.loads(line)['input'] for line in f] == ['/in/B/bad.zip']
    with open(f'{root}/manifest.json', 'rb') as f:
        published = f.read()
    os.remove(f'{root}/manifest.json')
    rebuild_manifest(root, INFO, [json.load(open(f'{root}/{p}')) for p in list_parts(root)])
    with open(f'{root}/manifest.json', 'rb') as f:
        assert f.read() == published
    taken, known = ledger_of([json.load(open(f'{root}/{p}')) for p in list_parts(root)])
    assert taken == {'/in/A/a.zip': (5, 1.0), '/in/A/b.zip': (5, 2.0), '/in/A/c.zip': (5, 2.0)}
    assert known == {'s1': '/in/A/a.zip', 's2': '/in/A/b.zip'}


def test_files_of_unfinished_windows_are_pending_then_removed(tmp_path):
    root, args = str(tmp_path), SimpleNamespace(output=str(tmp_path), overwrite=False)
    publish_part(root, INFO, _part(root, 1, 0))
    done = window_name(1, 0)
    unfinished = f'webdataset/train/{window_name(2, 300)}-train-000000.tar'
    for relative in (f'webdataset/train/{done}-train-000000.tar', unfinished, f'errors/{window_name(2, 300)}.jsonl',
                     'parquet/train/x.parquet.tmp-1234', 'webdataset/train/stray.tar', '_work/codes/x.npz'):
        _touch(f'{root}/{relative}')
    stray = ['webdataset/train/stray.tar']
    assert split_pending(read_manifest(root), [unfinished] + stray + ['parquet/train/x.parquet.tmp-1234']) == \
        (stray, [unfinished, 'parquet/train/x.parquet.tmp-1234'])
    parts = prepare_stream_output(args, INFO)
    assert [p['window'] for p in parts] == [done] and orphan_files(root, parts) == []
    assert not os.path.exists(f'{root}/{unfinished}') and not os.path.exists(f'{root}/_work')
    assert os.path.exists(f'{root}/webdataset/train/{done}-train-000000.tar')
    with pytest.raises(ValueError, match='other options'):
        prepare_stream_output(args, dict(INFO, fingerprint='f2'))
    assert prepare_stream_output(SimpleNamespace(output=root, overwrite=True), dict(INFO, fingerprint='f2')) == []
    assert not os.path.exists(f'{root}/manifests') and not os.path.exists(f'{root}/manifest.json')


def test_a_batch_dataset_is_not_continued(tmp_path):
    with open(tmp_path / 'manifest.json', 'w') as f:
        json.dump(dict(INFO, splits={}), f)
    with pytest.raises(ValueError, match='built in batch'):
        prepare_stream_output(SimpleNamespace(output=str(tmp_path), overwrite=False), INFO)


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class _Driver(StreamDriver):
    """The driver's loop with a scripted watcher and clock; windows are recorded, not built."""

    def __init__(self, polls, **flags):
        args = SimpleNamespace(**dict(dict(input='/in', output='/out', watch_interval=1.0, window_seconds=10.0,
                                           stop_after_idle=None), **flags))
        super().__init__(args, None, None, INFO, [], clock=_Clock())
        self.polls, self.windows = list(polls), []
        self.watcher = SimpleNamespace(poll=self._poll, waiting=0)
        self.stop.wait = self._advance

    def _poll(self):
        return self.polls.pop(0) if self.polls else []

    def _advance(self, seconds):
        self.clock.now += seconds
        if not self.polls and self.args.stop_after_idle is None:
            self.stop.set()     # as a signal would, with a window still open

    def run_window(self, start, found):
        self.windows.append((start, [f[0] for f in found], self.clock.now))


def test_driver_closes_clock_aligned_windows_and_stops_when_idle():
    driver = _Driver([[('/in/A/a.zip', 1, 1.0)], [], [('/in/A/b.zip', 1, 1.0)]] + [[]] * 8 +
                     [[('/in/B/c.zip', 1, 1.0)]], stop_after_idle=5.0)
    driver.run()
    assert [(start, paths) for start, paths, _ in driver.windows] == [
        (1000.0, ['/in/A/a.zip', '/in/A/b.zip']), (1010.0, ['/in/B/c.zip'])]
    assert all(closed >= start + 10 for start, _, closed in driver.windows)
    assert driver.clock.now >= driver.windows[-1][2] + 5


def test_driver_writes_the_open_window_when_stopped():
    driver = _Driver([[('/in/A/a.zip', 1, 1.0)]])
    driver.run()
    assert [(start, paths) for start, paths, _ in driver.windows] == [(1000.0, ['/in/A/a.zip'])]
    assert driver.windows[0][2] < 1010.0       # before the window's end: the stop closed it
    assert window_start(1019.9, 10.0) == 1010.0


@pytest.mark.parametrize('flags, message', [
    ({'task': 'separation'}, 'continuation only'),
    ({'source': 'slakh'}, 'stem archives'),
    ({'fill_missing': 'reserve'}, 'whole corpus'),
    ({'resume': True}, 'always continues'),
    ({'watch_interval': 0}, '--watch-interval'),
    ({'window_seconds': -1}, '--window-seconds'),
    ({'stop_after_idle': -1}, '--stop-after-idle'),
])
def test_what_continuous_mode_refuses(flags, message):
    args = dict(task='continuation', source='stems', fill_missing='skip', resume=False, watch_interval=30.0,
                window_seconds=300.0, stop_after_idle=None)
    with pytest.raises(ValueError, match=message):
        check_stream_options(SimpleNamespace(**dict(args, **flags)), local=True)
