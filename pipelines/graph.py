"""The graph every build runs: source -> SkipDuplicates -> the shared song stages (PlanSplits,
FillMissing, LoadStems, AssignSplit) -> the task -> ContainFailures -> WriteDataset. The streaming
build (pipelines/stream_graph.py) runs the same ``songs_to_sink`` (song stages, task, failures)
between its watching source and its windowed sink: the sink is a parameter.
"""
import functools

import apache_beam as beam

from pipelines.progress import write_song_count
from pipelines.run_state import RUN_CONTROL, fingerprint
from schemas.shards import work_path
from transforms.decode import LoadStems
from transforms.dedup import DUPLICATES, SkipDuplicates, duplicate_failure
from transforms.failures import FAILED, ContainFailures
from transforms.fill import FillMissing, is_reserve_group
from transforms.sources.registry import check_source_options, source_class
from transforms.split import AssignSplit, PlanSplits, parse_ratios
from transforms.tasks.task import RECORDS
from transforms.write import WriteDataset


def split_songs(songs, args, task, whole_corpus: bool = True):
    """The stages every task shares after the source's songs: PlanSplits (over the whole corpus
    unless ``whole_corpus`` is False, a streaming build) -> FillMissing -> LoadStems ->
    AssignSplit. Returns (split songs, LoadStems' failures)."""
    reserve = args.fill_missing == 'reserve'
    policy = songs | 'PlanSplits' >> PlanSplits(
        parse_ratios(args.split_ratios), args.split_from, whole_corpus,
        exclude=functools.partial(is_reserve_group, fraction=args.reserve_fraction) if reserve else None)
    songs = songs | 'FillMissing' >> FillMissing(
        args.fill_missing, task.fill_classes(), args.reserve_fraction, policy, args.seed)
    # Songs wait for the split policy here, as SongRefs, so LoadStems, AssignSplit and the task run
    # fused, one song's audio at a time. Without it the runner's stage boundary falls before
    # AssignSplit, the first stage that reads the policy, and every decoded song is held there.
    songs = songs | 'AwaitSplitPolicy' >> beam.Map(lambda ref, _: ref, beam.pvalue.AsSingleton(policy))
    rate, channels = task.audio_format()
    loaded = songs | 'LoadStems' >> LoadStems(rate, channels, args.max_song_seconds, args.max_uncompressed_mb,
                                              args.silent_peak_db)
    split = loaded.songs | 'AssignSplit' >> AssignSplit(policy)
    return split, loaded[FAILED]


def task_records(songs, task):
    """The task's stages on the split songs, then ContainFailures: returns (the records of the songs
    that did not fail, the task's failures). A song that fails at any stage of the task has none of
    its records written."""
    made = songs | f'{type(task).__name__}' >> task
    return (made[RECORDS], made[FAILED], songs) | 'ContainFailures' >> ContainFailures(task.size_of)


def songs_to_sink(songs, upstream_failures: tuple, args, task, sink, whole_corpus: bool = True):
    """The part every build shares, between its deduplicated songs and its sink: the song stages,
    the task, ContainFailures, every failure merged. ``sink(records, failures)`` writes them (the
    batch build's WriteDataset, the streaming build's WriteWindow); returns what it returns."""
    split, load_failures = split_songs(songs, args, task, whole_corpus)
    records, task_failures = task_records(split, task)
    failures = tuple(upstream_failures) + (load_failures, task_failures) | 'MergeFailures' >> beam.Flatten()
    return sink(records, failures)


def build_graph(pipeline, args, task):
    """Adds every stage to ``pipeline``: source -> shared song stages -> the task -> sinks.
    Returns the PCollection holding the manifest's path."""
    check_source_options(args)
    reader = source_class(args.source)
    source = pipeline | reader.__name__ >> reader.from_args(args)
    unique = source.songs | 'SkipDuplicates' >> SkipDuplicates({})
    _ = (unique.songs                       # the progress line's total, before any song is decoded
         | 'CountSongs' >> beam.combiners.Count.Globally()
         | 'RecordSongCount' >> beam.Map(write_song_count, args.output))
    copies = unique[DUPLICATES] | 'DuplicatesToErrors' >> beam.Map(duplicate_failure)

    def sink(records, failures):
        return (records, failures) | 'WriteDataset' >> WriteDataset(
            args.output, manifest_info(args, task), args.shard_examples, args.shard_mb,
            stats_root=work_path(args.output, 'shards'), writers=task.WRITERS, size_of=task.size_of,
            wait_for=task.exports(records, args.output))
    return songs_to_sink(unique.songs, (source[FAILED], copies), args, task, sink)


def manifest_info(args, task) -> dict:
    return dict({'task': args.task, 'source': args.source, 'fingerprint': fingerprint(args, task.shaping()),
                 'options': {k: v for k, v in sorted(vars(args).items()) if k not in RUN_CONTROL}},
                **task.manifest_info())
