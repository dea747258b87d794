"""Runner presets: the options objects they build (nothing here reaches a cluster), and the
worker image's Dockerfile against setup.py and the installed Beam."""
import os
import re

import apache_beam
import pytest

from pipelines.options import make_parser, parse_args
from runners.container import artifact_registry_image, local_image, package_version, sdk_base_image
from runners.dataflow import ENCODE_BATCH_SIZE, HARNESS_THREADS
from runners.registry import PRESETS, with_preset
from tests.conftest import ROOT

PATHS = ['--input=gs://corpus/stems', '--output=gs://datasets/guitar']
DATAFLOW = ['--preset=dataflow-gpu', '--project=acme', '--region=europe-west4',
            '--temp_location=gs://acme-tmp/beam'] + PATHS


def _build(argv):
    """(our args, Beam's options as a dict of what differs from Beam's defaults)."""
    args, options = parse_args(with_preset(argv))
    return args, options.get_all_options(drop_default=True), options


def test_registry_and_flag_agree():
    assert set(PRESETS) == {'direct', 'direct-multiprocess', 'dask-local', 'dataflow-gpu', 'dataflow-streaming', 'flink'}
    assert make_parser().parse_known_args(['--preset=flink'])[0].preset == 'flink'
    with pytest.raises(SystemExit):
        with_preset(['--preset=spark'] + PATHS)
    assert with_preset(PATHS) == PATHS


def test_dataflow_gpu_preset():
    args, beam, _ = _build(DATAFLOW)
    assert beam['runner'] == 'DataflowRunner'
    assert beam['dataflow_service_options'] == ['worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver']
    assert beam['experiments'] == ['use_runner_v2', 'no_use_multiple_sdk_containers']
    assert beam['machine_type'] == 'g2-standard-8' and beam['disk_size_gb'] >= 50
    assert beam['number_of_worker_harness_threads'] == HARNESS_THREADS == 2
    assert (args.device, args.encode_batch_size) == ('cuda', ENCODE_BATCH_SIZE)
    assert beam['sdk_container_image'] == 'europe-west4-docker.pkg.dev/acme/stemforge/stemforge-worker:' \
                                          + package_version()
    assert beam['sdk_location'] == 'container'
    assert (beam['project'], beam['region'], args.input) == ('acme', 'europe-west4', 'gs://corpus/stems')


def test_user_flags_override_the_preset():
    t4 = 'worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver'
    args, beam, _ = _build(DATAFLOW + ['--machine_type=g2-standard-16', '--number_of_worker_harness_threads=3',
                                       '--dataflow_service_options', t4, '--experiments=use_runner_v2',
                                       '--experiments=enable_prime', '--encode-batch-size=48',
                                       '--sdk_container_image=us-docker.pkg.dev/acme/img/worker:7'])
    assert beam['machine_type'] == 'g2-standard-16' and beam['number_of_worker_harness_threads'] == 3
    assert beam['dataflow_service_options'] == [t4]          # the same key replaces the preset's
    assert beam['experiments'] == ['no_use_multiple_sdk_containers', 'use_runner_v2', 'enable_prime']
    assert beam['sdk_container_image'] == 'us-docker.pkg.dev/acme/img/worker:7' and args.encode_batch_size == 48


def test_dataflow_needs_an_image_or_where_to_find_it():
    with pytest.raises(ValueError, match='--project and --region'):
        with_preset(['--preset=dataflow-gpu', '--temp_location=gs://t/x'] + PATHS)
    _, beam, _ = _build(['--preset=dataflow-gpu', '--sdk_container_image=registry.example/w:1'] + PATHS)
    assert beam['sdk_container_image'] == 'registry.example/w:1' and 'project' not in beam


def test_flink_preset_and_external_harness():
    _, beam, _ = _build(['--preset=flink', '--flink_master=flink-jm:8081'] + PATHS)
    assert beam['runner'] == 'FlinkRunner' and beam['flink_master'] == 'flink-jm:8081'
    assert beam['environment_type'] == 'DOCKER' and int(beam['sdk_worker_parallelism']) == 1
    assert beam['environment_options'] == [f'docker_container_image={local_image()}']
    image = 'registry.example/stemforge-worker:9'
    _, beam, _ = _build(['--preset=flink', f'--environment_options=docker_container_image={image}'] + PATHS)
    assert beam['environment_options'] == [f'docker_container_image={image}']
    _, beam, _ = _build(['--preset=flink', '--environment_type=EXTERNAL',
                         '--environment_config=localhost:50000'] + PATHS)
    assert (beam['environment_type'], beam['environment_config']) == ('EXTERNAL', 'localhost:50000')


def test_direct_presets():
    _, beam, _ = _build(['--preset=direct'] + PATHS)
    assert beam['runner'] == 'runners.direct.LocalFnApiRunner' and beam.get('direct_running_mode', 'in_memory') == 'in_memory'
    _, beam, options = _build(['--preset=direct-multiprocess'] + PATHS)
    assert beam['direct_running_mode'] == 'multi_processing'
    assert options.get_all_options()['direct_num_workers'] == (os.cpu_count() or 1)
    _, beam, _ = _build(['--preset=direct-multiprocess', '--direct_num_workers=3'] + PATHS)
    assert beam['direct_num_workers'] == 3


def _dockerfile():
    with open(os.path.join(ROOT, 'Dockerfile')) as f:
        return [line.strip() for line in f.read().replace('\\\n', ' ').splitlines()
                if line.strip() and not line.strip().startswith('#')]


def test_dockerfile_is_from_the_installed_beams_sdk_image_and_installs_the_package():
    lines = _dockerfile()
    instructions = {'FROM', 'RUN', 'COPY', 'ARG', 'ENV', 'WORKDIR', 'LABEL', 'USER', 'ENTRYPOINT', 'CMD'}
    assert all(line.split()[0] in instructions for line in lines), 'unknown instruction'
    froms = [line.split()[1] for line in lines if line.startswith('FROM ')]
    python = re.match(r'apache/beam_python(\d+\.\d+)_sdk:', froms[0]).group(1)
    assert froms == [sdk_base_image(python=python, beam=apache_beam.__version__)]
    with open(os.path.join(ROOT, 'setup.py')) as f:
        setup = f.read()
    pin = re.search(r"'apache-beam\[[a-z,]+\]==([\d.]+)\.\*'", setup).group(1)
    assert apache_beam.__version__.startswith(pin + '.'), (apache_beam.__version__, pin)
    assert tuple(map(int, python.split('.'))) >= tuple(map(int, re.search(
        r"python_requires='>=(\d+\.\d+)'", setup).group(1).split('.')))
    copied = {line.split()[1].rstrip('/') for line in lines if line.startswith('COPY ')}
    packages = re.search(r"find_packages\(include=\[([^\]]*)\]", setup).group(1)
    assert {p.strip(" '") for p in packages.split(',') if '.' not in p} <= copied
    assert 'setup.py' in lines[[i for i, line in enumerate(lines) if line.startswith('COPY setup.py')][0]]
    runs = [line for line in lines if line.startswith('RUN ')]
    assert any(re.search(r'pip install --no-cache-dir \.(\s|$)', run) for run in runs)
    assert not any(re.search(r'pip install[^&]*apache.beam', run) for run in runs)
    assert not any('apt-get' in run for run in runs), 'the image needs no system package'
    env = ' '.join(line for line in lines if line.startswith('ENV '))
    for variable in ('NVIDIA_VISIBLE_DEVICES=all', 'NVIDIA_DRIVER_CAPABILITIES=compute,utility',
                     'LD_LIBRARY_PATH=/usr/local/nvidia/lib64', 'HF_HUB_OFFLINE=1'):
        assert variable in env, variable
    assert any('EncodecModel.from_pretrained' in run for run in runs)
    assert any('torch.version.cuda' in run for run in runs) and not any('whl/cpu' in run for run in runs)


def test_image_names():
    assert artifact_registry_image('p', 'us-central1') == \
        f'us-central1-docker.pkg.dev/p/stemforge/stemforge-worker:{package_version()}'
    assert local_image().startswith('stemforge-worker:')
