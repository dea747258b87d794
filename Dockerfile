# The stemforge worker image: the SDK harness for Dataflow (--sdk_container_image) and Flink
# (--environment_type=DOCKER). FROM the Apache Beam Python SDK image of the Beam version setup.py
# pins (apache-beam==2.77.*); tests/test_runners.py checks the two agree.
#
#   docker build -t stemforge-worker:0.1.0 .
#
# The SDK image's entrypoint (/opt/apache/beam/boot) is kept: it starts the harness.
FROM apache/beam_python3.11_sdk:2.77.0

# ffmpeg decodes what libsndfile cannot and runs the lossy-codec distortion.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

# PyPI's Linux torch wheels are the CUDA builds (CUDA 12 runtime libraries come as nvidia-*
# wheels; the Dataflow/host driver provides libcuda). Installed first so the package's
# torch>=2.1 requirement is already met and no CPU build replaces it.
ARG TORCH_VERSION=2.13.0
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" \
    && python -c "import torch; assert torch.version.cuda, 'torch without CUDA'; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"

WORKDIR /opt/stemforge
COPY setup.py README.md ./
COPY pipelines/ pipelines/
COPY transforms/ transforms/
COPY schemas/ schemas/
COPY runners/ runners/
# Installs the package and its install_requires from setup.py; the image's apache-beam (the
# FROM version) already satisfies the pin, so pip keeps it.
RUN pip install --no-cache-dir . \
    && python -c "import apache_beam, pipelines.build; print('apache-beam', apache_beam.__version__)" \
    && pip check

# Codec weights and the random-weights calibration are cached here; mount or pre-fill it to
# keep workers from downloading facebook/encodec_* at start-up.
ENV STEMFORGE_CACHE=/opt/stemforge/cache \
    HF_HOME=/opt/stemforge/cache/huggingface
