"""The preset registry and ``--preset``, the flag that picks one (a PipelineOptions subclass
collected into the build's options)."""
import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from runners.dask import DASK_LOCAL
from runners.dataflow import DATAFLOW_GPU, DATAFLOW_STREAMING
from runners.direct import DIRECT, DIRECT_MULTIPROCESS
from runners.flink import FLINK

PRESETS = {p.name: p for p in (DIRECT, DIRECT_MULTIPROCESS, DASK_LOCAL, DATAFLOW_GPU, DATAFLOW_STREAMING, FLINK)}


class PresetOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument('--preset', default=None, choices=sorted(PRESETS),
                            help='Fill in a runner\'s flags: '
                                 + '; '.join(f'{name}: {p.description}' for name, p in PRESETS.items())
                                 + ' Flags given beside it win. Default: none (Beam\'s own defaults).')


def with_preset(argv) -> list:
    """``argv`` with the flags of its ``--preset`` (if any) in front of the user's."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    PresetOptions._add_argparse_args(parser)
    chosen, _ = parser.parse_known_args(list(argv))
    return PRESETS[chosen.preset].argv(argv) if chosen.preset else list(argv)
