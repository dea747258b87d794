"""Dataflow with one NVIDIA L4 per worker, in the worker image (``Dockerfile``).

One codec model per GPU: ``no_use_multiple_sdk_containers`` runs a single SDK process per
worker VM (Dataflow otherwise starts one per vCPU, each loading its own model onto the one
GPU). ``EncodeChunks`` holds its model in a ``shared.Shared``, so every harness thread of that
process encodes with the same model. ``HARNESS_THREADS`` threads each keep at most one batch of
``ENCODE_BATCH_SIZE`` segments on the GPU; the other stages (decode, resample, render) run on
the same threads and mostly release the GIL in numpy, soxr and pedalboard.
"""
from apache_beam.options.pipeline_options import GoogleCloudOptions, WorkerOptions

from runners.container import artifact_registry_image
from runners.presets import Preset

ACCELERATOR = 'worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver'
MACHINE_TYPE = 'g2-standard-8'     # the L4's host: 8 vCPU, 32 GB (four 10-minute, 16-stem songs in flight fit)
ENCODE_BATCH_SIZE = 32             # segments per forward pass: 64 windows at 2 windows per segment
HARNESS_THREADS = 2                # batches in flight on the GPU: 2 x 32 segments of ~21.5 s
DISK_SIZE_GB = 100                 # the CUDA image is ~10 GB; room for shuffle spill


def _image(user_options, preset: str = 'dataflow-gpu') -> list:
    """The worker image pushed as docs/scale.md says, unless ``--sdk_container_image`` is given."""
    worker = user_options.view_as(WorkerOptions)
    if worker.sdk_container_image or worker.worker_harness_container_image:
        return []
    cloud = user_options.view_as(GoogleCloudOptions)
    if not (cloud.project and cloud.region):
        raise ValueError(f'--preset={preset} needs --project and --region (the worker image is then '
                         f'{artifact_registry_image("PROJECT", "REGION")}, pushed as docs/scale.md says) '
                         'or --sdk_container_image')
    return [f'--sdk_container_image={artifact_registry_image(cloud.project, cloud.region)}']


GPU_WORKER_FLAGS = ('--runner=DataflowRunner',
                    '--experiments=use_runner_v2',
                    '--experiments=no_use_multiple_sdk_containers',
                    f'--dataflow_service_options={ACCELERATOR}',
                    f'--machine_type={MACHINE_TYPE}',
                    f'--disk_size_gb={DISK_SIZE_GB}',
                    f'--number_of_worker_harness_threads={HARNESS_THREADS}',
                    '--sdk_location=container',
                    '--device=cuda',
                    f'--encode-batch-size={ENCODE_BATCH_SIZE}')

DATAFLOW_GPU = Preset(
    name='dataflow-gpu',
    description='Dataflow Runner v2, one NVIDIA L4 per g2-standard-8 worker, one SDK process (one codec '
                'model) per GPU, in the stemforge worker image.',
    flags=GPU_WORKER_FLAGS,
    derive=_image)

# Continuous mode (--streaming) on Dataflow: the same GPU workers, a streaming job on Streaming
# Engine (state, timers and shuffles kept by the service, so workers can scale down to the
# stream's rate), running MatchContinuously and fixed windows (pipelines/stream_graph.py).
DATAFLOW_STREAMING = Preset(
    name='dataflow-streaming',
    description='Continuous mode on Dataflow: a streaming job (--streaming, Streaming Engine) on the '
                'dataflow-gpu workers, watching --input and writing a window every --window-seconds.',
    flags=('--streaming', '--enable_streaming_engine') + GPU_WORKER_FLAGS,
    derive=lambda user_options: _image(user_options, 'dataflow-streaming'))
