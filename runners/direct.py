"""DirectRunner presets: in-process (one worker) and one SDK worker process per core, which
pickles every DoFn as a cluster runner does.

Beam's ``DirectRunner`` first tries the Prism runner, which fetches a Prism binary from GitHub
and, when it can, runs the pipeline there (where ``--direct_running_mode`` does not apply); it
falls back to the FnApiRunner otherwise. The presets name ``LocalFnApiRunner`` instead: the
FnApiRunner path of the DirectRunner itself, with no download and no switch.
"""
import os

from apache_beam.runners.runner import PipelineRunner

from runners.presets import Preset

RUNNER = 'runners.direct.LocalFnApiRunner'


class LocalFnApiRunner(PipelineRunner):
    """Runs on Beam's FnApiRunner as the DirectRunner does when it falls back to it: the pipeline's
    options go to the workers in the provision info (so worker processes see ``--s3_*``)."""

    def run_pipeline(self, pipeline, options):
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle
        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision_info = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
        return fn_runner.FnApiRunner(provision_info=provision_info).run_pipeline(pipeline, options)


DIRECT = Preset(
    name='direct',
    description='DirectRunner\'s FnApiRunner, in-process (one worker).',
    flags=(f'--runner={RUNNER}', '--direct_running_mode=in_memory'))


def _one_worker_per_core(user_options) -> list:
    return [f'--direct_num_workers={os.cpu_count() or 1}']


DIRECT_MULTIPROCESS = Preset(
    name='direct-multiprocess',
    description='DirectRunner\'s FnApiRunner with one SDK worker process per core (--direct_num_workers '
                'to change).',
    flags=(f'--runner={RUNNER}', '--direct_running_mode=multi_processing'),
    derive=_one_worker_per_core)
