"""WriteDataset: shards per split in every format, the error log and the manifest.

Shard membership is a function of the example id (a stable hash modulo the split's
shard count, which follows from the split's size); rows inside a shard are sorted by
id. Each format has one writer class, from the task's ``WRITERS`` (default: continuation's).
"""
import json
import math

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from schemas.ids import stable_fraction, stable_id
from schemas.manifest import ERRORS_PATH, build_manifest, write_manifest
from schemas.shards import ShardStats, join, shard_path, write_atomic
from schemas.continuation import WRITERS, sample_bytes


class WriteOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--output', default=None,
                            help='Dataset root: local path, s3:// or gs://. Required (default with --demo: '
                                 './demo-dataset).')
        parser.add_argument('--shard-examples', type=int, default=1000,
                            help='Target examples per shard. Default: 1000.')
        parser.add_argument('--shard-mb', type=float, default=None,
                            help='Target shard size in MB (whichever of the two limits gives more shards). '
                                 'Default: none.')


def shard_count(count: int, nbytes: int, shard_examples: int, shard_mb) -> int:
    by_count = math.ceil(count / shard_examples) if shard_examples else 1
    by_bytes = math.ceil(nbytes / (shard_mb * 1e6)) if shard_mb else 1
    return max(1, by_count, by_bytes)


def open_writer(writer_class, path: str, split: str, index: int):
    """A shard's writer: ``writer_class.for_shard(path, split, index)`` when the class wants to know
    which shard it writes (an index pointing into a sibling format's shard), else ``writer_class(path)``."""
    if hasattr(writer_class, 'for_shard'):
        return writer_class.for_shard(path, split, index)
    return writer_class(path)


class WriteShardFn(beam.DoFn):
    """((split, shard), examples) -> ShardStats of every format.

    With ``stats_root``, a stats file per shard group is written last (it marks the shards
    complete); a group whose stats file matches its example ids and whose files are in place
    is not written again (a resumed run).
    """

    def __init__(self, root: str, stats_root: str = None, writers: dict = None):
        self.root = root
        self.stats_root = stats_root
        self.writers = WRITERS if writers is None else writers
        self.shards_written = Metrics.counter(self.__class__, 'shards_written')
        self.shards_reused = Metrics.counter(self.__class__, 'shards_reused')

    def process(self, element, window=beam.DoFn.WindowParam):
        (split, index), examples = element
        examples = sorted(examples, key=lambda e: e.example_id)
        ids = stable_id('shard', [e.example_id for e in examples])
        stats_file = self.stats_root and FileSystems.join(self.stats_root, f'{split}-{index:06d}.json')
        reused = self._complete(stats_file, ids)
        if reused is not None:
            self.shards_reused.inc(len(reused))
            yield from reused
            return
        written = []
        for fmt, writer_class in self.writers.items():
            relative = self.shard_relative(fmt, split, index, window)
            with open_writer(writer_class, join(self.root, relative), split, index) as writer:
                for example in examples:
                    writer.write(example)
            self.shards_written.inc()
            written.append(ShardStats(split=split, format=fmt, path=relative, examples=writer.examples,
                                      bytes=writer.bytes, sha256=writer.sha256))
        if stats_file:
            write_atomic(stats_file, json.dumps({'ids': ids, 'shards': [s.to_dict() for s in written]},
                                                sort_keys=True).encode('utf-8'))
        yield from written

    def shard_relative(self, fmt: str, split: str, index: int, window) -> str:
        """The shard's path under the root (a windowed sink names it after ``window``)."""
        return shard_path(fmt, split, index)

    def _complete(self, stats_file, ids):
        """The recorded ShardStats when the group is complete on disk, else None."""
        if not stats_file or not FileSystems.exists(stats_file):
            return None
        with FileSystems.open(stats_file) as handle:
            recorded = json.loads(handle.read().decode('utf-8'))
        shards = [ShardStats.from_dict(s) for s in recorded['shards']]
        paths = [join(self.root, s.path) for s in shards]
        if recorded['ids'] != ids or not all(FileSystems.exists(p) for p in paths):
            return None
        sizes = [result.metadata_list[0].size_in_bytes for result in FileSystems.match(paths)]
        return shards if sizes == [s.bytes for s in shards] else None


class SplitStatsFn(beam.CombineFn):
    """(song_id, seconds) per example -> {songs, examples, audio_seconds} of a split."""

    def create_accumulator(self):
        return set(), 0, 0.0

    def add_input(self, acc, item):
        songs, count, seconds = acc
        songs.add(item[0])
        return songs, count + 1, seconds + item[1]

    def merge_accumulators(self, accs):
        songs, count, seconds = set(), 0, 0.0
        for s, c, x in accs:
            songs |= s
            count += c
            seconds += x
        return songs, count, seconds

    def extract_output(self, acc):
        return {'songs': len(acc[0]), 'examples': acc[1], 'audio_seconds': round(acc[2], 6)}


def _write_errors(failures, root):
    lines = sorted(json.dumps(f.to_dict(), sort_keys=True) for f in failures)
    write_atomic(join(root, ERRORS_PATH), ''.join(line + '\n' for line in lines).encode('utf-8'))
    by_stage = {}
    for failure in failures:
        by_stage[failure.stage] = by_stage.get(failure.stage, 0) + 1
    return by_stage


def _write_manifest(_, root, info, shard_stats, split_stats, errors_by_stage, *exported):
    files = [item for group in exported for item in group]
    return write_manifest(root, build_manifest(info, shard_stats, split_stats, errors_by_stage, files))


def assign_shard(example, sizes, shard_examples, shard_mb):
    split = example.meta.split
    count, nbytes = sizes[split]
    shards = shard_count(count, nbytes, shard_examples, shard_mb)
    return (split, int(stable_fraction('shard', example.example_id) * shards)), example


def add_sizes(values) -> tuple:
    """Sums (examples, bytes) pairs."""
    count, nbytes = 0, 0
    for c, b in values:
        count, nbytes = count + c, nbytes + b
    return count, nbytes


def shards_and_stats(examples, size_of, shard_examples: int, shard_mb, write_fn):
    """The sink's shared part (the batch and the windowed sink): each split's size, each example's
    shard (``assign_shard``), the shards written by ``write_fn`` (a DoFn of (shard key, examples)),
    and each split's songs and seconds. Returns (written shards, split stats)."""
    sizes = (examples
             | 'SizeOf' >> beam.Map(lambda e, size_of: (e.meta.split, (1, size_of(e))), size_of)
             | 'SizePerSplit' >> beam.CombinePerKey(add_sizes))
    shards = (examples
              | 'AssignShard' >> beam.Map(assign_shard, beam.pvalue.AsDict(sizes), shard_examples, shard_mb)
              | 'GroupShards' >> beam.GroupByKey()
              | 'WriteShards' >> beam.ParDo(write_fn))
    split_stats = (examples
                   | 'SongAndSeconds' >> beam.Map(lambda e: (e.meta.split, (e.meta.song_id, e.meta.duration_seconds)))
                   | 'StatsPerSplit' >> beam.CombinePerKey(SplitStatsFn()))
    return shards, split_stats


class WriteDataset(beam.PTransform):
    """Writes examples and failures under ``root``; outputs the manifest's path."""

    def __init__(self, root: str, info: dict, shard_examples: int = 1000, shard_mb=None, stats_root: str = None,
                 writers: dict = None, size_of=sample_bytes, wait_for=()):
        """``writers``: format -> writer class (default: the continuation task's); ``size_of``:
        a record's approximate bytes; ``wait_for``: PCollections of other outputs (exports)
        the manifest is written after; their ExportedFile elements are listed in it."""
        super().__init__()
        self.writers = writers
        self.size_of = size_of
        self.wait_for = list(wait_for)
        self.stats_root = stats_root
        if shard_examples is not None and shard_examples < 1:
            raise ValueError('--shard-examples must be at least 1')
        self.root = root
        self.info = info
        self.shard_examples = shard_examples
        self.shard_mb = shard_mb

    def expand(self, inputs):
        examples, failures = inputs
        shards, split_stats = shards_and_stats(examples, self.size_of, self.shard_examples, self.shard_mb,
                                               WriteShardFn(self.root, self.stats_root, self.writers))
        errors_by_stage = (failures
                           | 'AllFailures' >> beam.combiners.ToList()
                           | 'WriteErrors' >> beam.Map(_write_errors, self.root))
        return (examples.pipeline
                | 'ManifestSeed' >> beam.Create([None])
                | 'WriteManifest' >> beam.Map(_write_manifest, self.root, self.info, beam.pvalue.AsList(shards),
                                              beam.pvalue.AsDict(split_stats),
                                              beam.pvalue.AsSingleton(errors_by_stage),
                                              *[beam.pvalue.AsList(p) for p in self.wait_for]))
