"""Build a dataset: ``python -m pipelines.build --source=stems --input=DIR --output=DIR``.

Assembles the graph (source -> PlanSplits -> FillMissing -> LoadStems -> AssignSplit -> the task's
stages (``--task``; continuation: PlanExamples -> Render -> Chunk -> EncodeChunks ->
AssembleExamples) -> WriteDataset), runs it on the runner given by Beam's flags, and
ends with a summary of what was built and what failed.
"""
import functools
import logging
import os
import sys
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import StandardOptions

from pipelines.options import make_parser, parse_args
from pipelines.progress import ProgressReporter, write_song_count
from pipelines.report import write_report
from pipelines.run_state import RUN_CONTROL, finish, fingerprint, prepare_output, work_path
from pipelines.tools import check_tools
from runners.dask import NAME as DASK_RUNNER, RUNNER_NAMES as DASK_NAMES
from runners.direct import RUNNER as LOCAL_RUNNER
from runners.registry import with_preset
from schemas.manifest import add_counters, read_errors, read_manifest, write_counters
from schemas.card import package_version, write_card
from schemas.shards import join
from transforms.decode import LoadStems
from transforms.dedup import DUPLICATES, SkipDuplicates, duplicate_failure
from transforms.failures import FAILED, ContainFailures
from transforms.fill import FillMissing, is_reserve_group
from transforms.sources.registry import check_source_options, source_class
from transforms.split import MIN_GROUPS_FOR_EVERY_SPLIT, AssignSplit, PlanSplits, parse_ratios
from transforms.tasks.registry import TASKS, task_class
from transforms.tasks.task import RECORDS
from transforms.write import WriteDataset

LOG = logging.getLogger('pipelines.build')
DEMO_INPUT = 'demo-corpus'
DEMO_OUTPUT = 'demo-dataset'


class NothingBuilt(RuntimeError):
    """The run wrote no example; the message says why."""


@dataclass(frozen=True)
class BuildResult:
    output: str
    manifest: dict
    counters: dict


def resolve_paths(args):
    """Fills in the demo's and the task's defaults and checks that input and output are given."""
    parser_defaults = vars(make_parser().parse_args([]))
    if args.demo:
        args.input = args.input or DEMO_INPUT
        args.output = args.output or DEMO_OUTPUT
        from pipelines.demo import make_demo_corpus
        if not os.path.isdir(args.input) or not os.listdir(args.input):
            make_demo_corpus(args.input, seed=args.seed)
        for flag, value in task_class(args.task).DEMO_DEFAULTS.items():   # a quick demo, unless the flags say otherwise
            if getattr(args, flag) == parser_defaults[flag]:
                setattr(args, flag, value)
    task_class(args.task).resolve_defaults(args, parser_defaults)
    check_task_flags(args, parser_defaults)
    if not args.input or not args.output:
        raise ValueError('--input and --output are required (or use --demo)')


def check_task_flags(args, parser_defaults: dict) -> None:
    """Refuses the flags of a task other than --task: they would do nothing (flags --task
    declares or shares are its own)."""
    chosen = task_class(args.task)
    own = set(chosen.option_names()) | set(chosen.SHARED_OPTIONS)
    for name, cls in TASKS.items():
        used = [f for f in cls.option_names() if f not in own and getattr(args, f) != parser_defaults.get(f)]
        if name != args.task and used:
            flags = ', '.join('--' + f.replace('_', '-') for f in used)
            raise ValueError(f'{flags}: option(s) of --task={name}, not of --task={args.task}')


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
    songs, load_failures = split_songs(unique.songs, args, task)
    records, task_failures = task_records(songs, task)
    failures = (source[FAILED], copies, load_failures, task_failures) | 'MergeFailures' >> beam.Flatten()
    exports = task.exports(records, args.output)
    return (records, failures) | 'WriteDataset' >> WriteDataset(
        args.output, manifest_info(args, task), args.shard_examples, args.shard_mb,
        stats_root=work_path(args.output, 'shards'), writers=task.WRITERS, size_of=task.size_of,
        wait_for=exports)


def manifest_info(args, task) -> dict:
    return dict({'task': args.task, 'source': args.source, 'fingerprint': fingerprint(args, task.shaping()),
                 'options': {k: v for k, v in sorted(vars(args).items()) if k not in RUN_CONTROL}},
                **task.manifest_info())


def counters(result) -> dict:
    """Committed counter values by name, summed over steps."""
    totals = {}
    try:
        found = result.metrics().query(MetricsFilter())['counters']
    except (NotImplementedError, KeyError, AttributeError):
        return totals
    for counter in found:
        name = f'{counter.key.metric.namespace.rsplit(".", 1)[-1]}.{counter.key.metric.name}'
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[name] = totals.get(name, 0) + (value or 0)
    return totals


def summarize(manifest: dict, metrics: dict, output: str, task=None) -> list:
    """The run's last lines: what was read, built, dropped and failed."""
    get = lambda name: int(metrics.get(name, 0))
    codec = manifest.get('codec')
    lines = [f'dataset: {output} (task: {manifest.get("task", "continuation")})']
    lines += [f'codec: {codec["name"]} weights={codec["weights"]}'] if codec else []
    lines.append(f'songs read: {songs_read(metrics)}')
    no_examples = no_example_reasons(metrics)
    lines.append(f'songs with no examples: {sum(no_examples.values())} '
                 f'({", ".join(f"{k}={v}" for k, v in no_examples.items() if v) or "none"})')
    for split, stats in manifest['splits'].items():
        lines.append(f'{split}: {stats["examples"]} examples from {stats["songs"]} songs, '
                     f'{stats["audio_seconds"]:.1f} s of audio, '
                     f'{max(map(len, stats["shards"].values()), default=0)} shard(s)')
    lines += split_lines(metrics)
    lines += task.summary(manifest, metrics) if task is not None else []
    missing = {n.split('songs_missing_', 1)[1]: int(v) for n, v in sorted(metrics.items()) if '.songs_missing_' in n}
    if missing or get('SetAsideReserveFn.songs_reserved'):
        lines.append(f'songs lacking a target class: {", ".join(f"{k}={v}" for k, v in missing.items()) or "none"}; '
                     f'reserve: {get("SetAsideReserveFn.songs_reserved")} song(s) set aside, '
                     f'{get("FillFromReserveFn.stems_filled")} stem(s) filled')
    errors = manifest['errors']
    lines.append(f'errors: {errors["total"]} ({", ".join(f"{k}={v}" for k, v in errors["by_stage"].items()) or "none"})'
                 + (f' -> {join(output, errors["path"])}' if errors['total'] else ''))
    if codec and codec['weights'].startswith('random'):
        lines.append('NOTE: codes come from RANDOM codec weights (--codec-weights=random): '
                     'for testing the pipeline, not for training.')
    return lines


def split_lines(metrics: dict) -> list:
    """What PlanSplits did: the groups it moved so every split has one, or the splits left empty."""
    groups = int(metrics.get('PlanSplits.split_groups', 0))
    moved = {n.rsplit('groups_moved_to_', 1)[1]: int(v) for n, v in sorted(metrics.items())
             if n.startswith('PlanSplits.groups_moved_to_') and v}
    empty = [n.rsplit('split_empty_', 1)[1] for n, v in sorted(metrics.items())
             if n.startswith('PlanSplits.split_empty_') and v]
    lines = []
    if moved:
        lines.append(f'splits: {groups} group(s) split by hash left {", ".join(moved)} empty: '
                     f'{sum(moved.values())} group(s) moved there ({", ".join(f"{k}={v}" for k, v in moved.items())})')
    if empty:
        lines.append(f'splits: no {" or ".join(empty)} set: {groups} group(s) split by hash '
                     f'(at least {MIN_GROUPS_FOR_EVERY_SPLIT} give every split one)')
    return lines


# Counters of songs that yield no example, whichever stage or task drops them.
NO_EXAMPLE_PREFIXES = ('songs_no_', 'songs_too_short', 'songs_all_windows', 'songs_skipped_')


def no_example_reasons(metrics: dict) -> dict:
    """{reason: songs} of the songs that yielded no example ('no_target', 'too_short', ...)."""
    reasons = {}
    for name, value in sorted(metrics.items()):
        counter = name.split('.')[-1]
        if counter.startswith(NO_EXAMPLE_PREFIXES):
            reasons[counter[len('songs_'):]] = reasons.get(counter[len('songs_'):], 0) + int(value)
    return reasons


def songs_read(metrics: dict) -> int:
    """Songs the source read, whichever source it was."""
    return int(sum(v for name, v in metrics.items() if name.endswith('.songs_read')))


def explain_nothing_built(manifest: dict, errors: list, metrics: dict, input_path: str,
                          layout: str = '<artist>/<song>.zip or <artist>/<song>/ folders') -> str:
    if not songs_read(metrics) and not errors:
        return f'no songs found under {input_path} (expected {layout})'
    stages = manifest['errors']['by_stage']
    reasons = [f'{len(errors)} error(s) ({", ".join(f"{k}={v}" for k, v in stages.items())})'] if errors else []
    reasons += [f'{name.split(".")[-1]}={int(v)}' for name, v in sorted(metrics.items())
                if name.split('.')[-1].startswith(NO_EXAMPLE_PREFIXES) and v]
    return f'no examples were written from {input_path}: ' + '; '.join(reasons or ['no usable songs'])


def use_local_runner(beam_options) -> None:
    """Runs the DirectRunner (named or by default) through its FnApiRunner path: Beam's
    DirectRunner would first fetch a Prism binary from the network, and Prism ignores
    --direct_running_mode. ``DaskRunner`` is the project's (runners/dask.py), not Beam's."""
    standard = beam_options.view_as(StandardOptions)
    if standard.runner in (None, 'DirectRunner', 'direct'):
        standard.runner = LOCAL_RUNNER
    elif standard.runner in DASK_NAMES:
        standard.runner = DASK_RUNNER


def run(argv=None) -> BuildResult:
    """Builds the dataset; returns its manifest and counters. Raises NothingBuilt when no example
    was written."""
    args, beam_options = parse_args(with_preset(sys.argv[1:] if argv is None else argv))
    FileSystems.set_options(beam_options)   # s3:// and gs:// flags for the output checks before the pipeline
    use_local_runner(beam_options)
    check_tools(args)                           # before anything is read or written
    resolve_paths(args)
    task = task_class(args.task)(args, beam_options)
    args.streaming = beam_options.view_as(StandardOptions).streaming    # Beam's own --streaming
    if args.streaming:
        from pipelines.stream import run_stream    # continuous mode builds on this module
        return run_stream(args, beam_options, task)
    pipeline = beam.Pipeline(options=beam_options)
    build_graph(pipeline, args, task)           # checks every option before the output is touched
    if prepare_output(args, task.shaping()) == 'complete':
        print(f'{args.output} is complete (built with these options); nothing to do')
        return BuildResult(output=args.output, manifest=read_manifest(args.output), counters={})
    if task.random_codec_seed() is not None:
        LOG.warning('Building with RANDOM codec weights (seed %d): the tokens are not a real codec\'s.',
                    task.random_codec_seed())
    with ProgressReporter(args.output, args.chunk_seconds, args.progress_seconds):
        result = pipeline.run()
        result.wait_until_finish()
    manifest = read_manifest(args.output)
    metrics = counters(result)
    for line in summarize(manifest, metrics, args.output, task):
        print(line)
    write_counters(args.output, metrics)
    manifest = add_counters(args.output, manifest, metrics)
    write_card(args.output, manifest, vars(make_parser().parse_args([])), package_version())
    finish(args.output)
    if manifest['totals']['examples'] == 0:
        raise NothingBuilt(explain_nothing_built(manifest, read_errors(args.output), metrics, args.input,
                                                 source_class(args.source).LAYOUT))
    if args.report:
        print(f'report: {write_report(args.output)}')
    return BuildResult(output=args.output, manifest=manifest, counters=metrics)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    try:
        run(argv)
    except (NothingBuilt, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
