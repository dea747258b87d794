"""Build a dataset: ``python -m pipelines.build --source=stems --input=DIR --output=DIR``.

Assembles the graph (pipelines/graph.py: source -> PlanSplits -> FillMissing -> LoadStems -> AssignSplit -> the task's
stages (``--task``; continuation: PlanExamples -> Render -> Chunk -> EncodeChunks ->
AssembleExamples) -> WriteDataset), runs it on the runner given by Beam's flags, and
ends with a summary of what was built and what failed.
"""
import logging
import os
import sys

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import StandardOptions

from pipelines.graph import build_graph
from pipelines.options import make_parser, parse_args
from pipelines.progress import ProgressReporter
from pipelines.report import write_report
from pipelines.results import BuildResult, NothingBuilt, counters, explain_nothing_built, summarize
from pipelines.run_state import finish, prepare_output
from pipelines.tools import check_tools
from runners.dask import NAME as DASK_RUNNER, RUNNER_NAMES as DASK_NAMES
from runners.direct import RUNNER as LOCAL_RUNNER
from runners.registry import with_preset
from schemas.manifest import add_counters, read_errors, read_manifest, write_counters
from schemas.card import package_version, write_card
from transforms.sources.registry import source_class
from transforms.tasks.registry import TASKS, task_class

LOG = logging.getLogger('pipelines.build')
DEMO_INPUT = 'demo-corpus'
DEMO_OUTPUT = 'demo-dataset'


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
    task = task_class(args.task).from_args(args, beam_options)
    args.streaming = beam_options.view_as(StandardOptions).streaming    # Beam's own --streaming
    if args.streaming:
        from pipelines.stream import run_stream
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
