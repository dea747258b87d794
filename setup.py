"""stemforge: multitrack stems into EnCodec token datasets on Apache Beam."""
from setuptools import find_packages, setup

setup(
    name='stemforge',
    version='0.1.0',
    description='Turn multitrack stem archives into EnCodec token datasets (WebDataset, Parquet) on Apache Beam.',
    python_requires='>=3.10',
    packages=find_packages(include=['pipelines', 'transforms', 'transforms.*', 'schemas', 'runners']),
    install_requires=[
        'apache-beam[aws,dask,gcp]==2.77.*',   # the Dockerfile's FROM apache/beam_python3.11_sdk:2.77.0
        # FFmpeg's libraries in the wheel: AAC/ALAC/WMA/Opus decoding, .stem.mp4 streams, the lossy
        # distortion. 17.x is the last series with Python 3.10 wheels; 18.x runs 3.11-3.13.
        'av>=17,<19',
        'numpy>=1.26',
        'onnx>=1.16',                     # the encoder's export (cached; runs under the runtimes below)
        'onnxruntime>=1.18',
        'openvino>=2024.4',               # --codec-runtime=auto on CPU
        'pedalboard>=0.9',
        'pyarrow>=14',
        'soundfile>=0.12.1',
        'soxr>=0.3.7',
        'pyyaml>=6',
        'torch>=2.1',
        'tqdm>=4.60',                     # the progress bar on a terminal
        'transformers>=4.45,<6',
        'webdataset>=0.2.86',
    ],
    entry_points={'console_scripts': ['stemforge = pipelines.cli:main']},
    extras_require={
        'test': ['pytest>=7', 'moto[server]>=5', 'gcp-storage-emulator>=2024.8',
                 'matplotlib>=3.8', 'duckdb>=1.0', 'pandas>=2.0', 'polars>=1.0', 'datasets>=3.0',
                 'musdb>=0.4.2'],
        'report': ['matplotlib>=3.8'],
        'encodec': ['encodec>=0.1.1'],
    },
)
