"""The worker container: its name and the Beam SDK image it is built FROM.

The top-level ``Dockerfile`` builds ``stemforge-worker:<version>`` FROM the Apache Beam
Python SDK image of the Beam version this package pins; the Dataflow and Flink presets
run their SDK harness in it.
"""
import importlib.metadata
import sys

IMAGE_NAME = 'stemforge-worker'
ARTIFACT_REPOSITORY = 'stemforge'


def package_version() -> str:
    """The installed stemforge version (the image tag)."""
    try:
        return importlib.metadata.version('stemforge')
    except importlib.metadata.PackageNotFoundError:
        return '0.1.0'


def beam_version() -> str:
    import apache_beam
    return apache_beam.__version__


def sdk_base_image(python: str = None, beam: str = None) -> str:
    """``apache/beam_python3.11_sdk:2.77.0``: the image the worker image is built FROM."""
    python = python or f'{sys.version_info.major}.{sys.version_info.minor}'
    return f'apache/beam_python{python}_sdk:{beam or beam_version()}'


def local_image() -> str:
    """The tag ``docker build`` gives the image in docs/scale.md: ``stemforge-worker:<version>``."""
    return f'{IMAGE_NAME}:{package_version()}'


def artifact_registry_image(project: str, region: str) -> str:
    """Where docs/scale.md pushes the image for Dataflow:
    ``<region>-docker.pkg.dev/<project>/stemforge/stemforge-worker:<version>``."""
    return f'{region}-docker.pkg.dev/{project}/{ARTIFACT_REPOSITORY}/{local_image()}'
