"""The portable FlinkRunner, with the SDK harness in the worker image (``Dockerfile``).

``--environment_type=DOCKER`` makes each task manager start the image as its SDK harness;
``--sdk_worker_parallelism=1`` keeps one harness process (one codec model) per task manager,
which is one GPU when each task manager has one. Docker starts the harness without ``--gpus``:
the GPU reaches it through the NVIDIA runtime made Docker's default on the task managers, or
use ``--environment_type=EXTERNAL`` with a harness started by hand with ``--gpus`` (docs/scale.md).
"""
from runners.container import local_image
from runners.presets import Preset

FLINK = Preset(
    name='flink',
    description='Portable FlinkRunner on --flink_master (default localhost:8081), the stemforge worker '
                'image as a Docker SDK harness, one harness per task manager.',
    flags=('--runner=FlinkRunner',
           '--flink_master=localhost:8081',
           '--environment_type=DOCKER',
           f'--environment_options=docker_container_image={local_image()}',
           '--sdk_worker_parallelism=1',
           '--device=auto'))
