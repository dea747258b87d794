"""The build's options: every stage's PipelineOptions, collected into one parser.

A stage declares its flags beside its code; this module only lists the stages.
Flags no stage knows are handed to Beam (``--runner``, ``--direct_num_workers``, ...); a flag
neither knows is an error naming the closest valid flag (Beam alone would warn and drop it).
"""
import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.flags import UnknownFlag, parse_known_flags  # noqa: F401 (UnknownFlag: the error raised here)
from pipelines.run_state import RunOptions
from runners.dask import DaskWorkerOptions  # noqa: F401  (a Beam-side option: registered for --dask-workers)
from runners.registry import PresetOptions
from transforms.chunk import ChunkOptions
from transforms.decode import DecodeOptions
from transforms.codec_options import EncodeOptions
from transforms.fill import FillOptions
from transforms.sources.moisesdb import MoisesDbOptions
from transforms.sources.registry import SourceOptions
from transforms.sources.slakh import SlakhOptions
from transforms.split import SplitOptions
from transforms.tasks.registry import TASKS
from transforms.write import WriteOptions


class BuildOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--demo', action='store_true', default=False,
                            help='Synthesize a small multitrack corpus (into --input, default ./demo-corpus) '
                                 'and build it offline (implies --codec-weights=random unless weights are '
                                 'given). Default: off.')
        parser.add_argument('--task', default='continuation', choices=list(TASKS),
                            help='What examples to build. continuation: context tokens -> target tokens. '
                                 'separation: aligned mixture and target-stem chunks as audio (Open-Unmix, '
                                 'Demucs, Spleeter). '
                                 'descriptors: a searchable Parquet table of frame descriptors of every stem '
                                 'and mix (python -m pipelines.query). concept: encoded fragments of reference clips '
                                 'labelled by folder or stem class (textual inversion and the like). '
                                 'Default: continuation.')
        parser.add_argument('--seed', type=int, default=0,
                            help='Global seed of every random choice (and of random codec weights). Default: 0.')


class StreamOptions(PipelineOptions):
    """Continuous mode (pipelines/stream.py), switched on by Beam's own ``--streaming``: watch --input
    for new stem archives and add them to --output in windows."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--watch-interval', type=float, default=30.0,
                            help='With --streaming (Beam\'s flag: continuous mode, a dataset that grows as stem '
                                 'archives land in --input): seconds between two looks at --input. Default: 30.')
        parser.add_argument('--window-seconds', type=float, default=300.0,
                            help='Length of a window (--streaming): the archives found in one window become '
                                 'its shards and manifest part when it closes. Default: 300.')
        parser.add_argument('--stop-after-idle', type=float, default=None,
                            help='Stop after this many seconds without a new archive (--streaming, local '
                                 'runner; for tests and one-off catch-up runs). Default: run until a signal.')


STAGE_OPTIONS = (BuildOptions, StreamOptions, PresetOptions, SourceOptions, SlakhOptions, MoisesDbOptions,
                 FillOptions, DecodeOptions, SplitOptions, ChunkOptions, EncodeOptions, WriteOptions, RunOptions,
                 *(options for task in TASKS.values() for options in task.OPTIONS))


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m pipelines.build', allow_abbrev=False,
        description='Turn multitrack stems into EnCodec token datasets on Apache Beam. Flags not listed '
                    'here go to Beam (for example --runner=DirectRunner, --direct_running_mode='
                    'multi_processing, --direct_num_workers=2).')
    for options_class in STAGE_OPTIONS:
        options_class._add_argparse_args(parser)
    return parser


def parse_args(argv):
    """(our options as a namespace, Beam's PipelineOptions from the remaining flags).

    Raises:
        UnknownFlag: a flag no stage and no Beam options class declares (or a stray value).
    """
    args, beam_argv = parse_known_flags(make_parser(), argv, skip=STAGE_OPTIONS)
    return args, PipelineOptions(beam_argv)
