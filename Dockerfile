# The stemforge worker image: the SDK harness for Dataflow (--sdk_container_image) and Flink
# (--environment_type=DOCKER). FROM the Apache Beam Python SDK image of the Beam version setup.py
# pins (apache-beam==2.77.*); tests/test_runners.py checks the two agree.
#
#   docker build -t stemforge-worker:0.1.0 .
#
# The SDK image's entrypoint (/opt/apache/beam/boot) is kept: it starts the harness.
FROM apache/beam_python3.11_sdk:2.77.0

# No system package: PyAV's wheel bundles the FFmpeg libraries that decode what libsndfile cannot
# and run the lossy-codec distortion.

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

# GPU workers: the driver's libraries are mounted at /usr/local/nvidia on Dataflow (and by the
# NVIDIA container toolkit elsewhere); these are the variables Google's GPU container images set.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64

# Codec weights are baked in at build time (the build needs the Hugging Face Hub; workers do not):
# CODEC_WEIGHTS lists the checkpoints, empty for none. Workers then run with the hub offline, so a
# missing checkpoint is an error at start-up instead of a download on every worker.
ENV STEMFORGE_CACHE=/opt/stemforge/cache \
    HF_HOME=/opt/stemforge/cache/huggingface
ARG CODEC_WEIGHTS="facebook/encodec_32khz facebook/encodec_24khz facebook/encodec_48khz"
RUN for weights in ${CODEC_WEIGHTS}; do \
        python -c "import sys; from transformers import EncodecModel; EncodecModel.from_pretrained(sys.argv[1])" "$weights" \
        || exit 1; \
    done
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
