# syntax=docker/dockerfile:1
# Dockerfile for the conda environment "analysis", written by sifpack 0.1.0
# from the same recipe as the Apptainer definition file.
# Base preset "cuda": micromamba 2.3 on the NVIDIA CUDA 12.6 runtime (Ubuntu 22.04), for GPU jobs
FROM mambaorg/micromamba:2.3.2-cuda12.6.3-ubuntu22.04

# Install as root, as apptainer's %post does (some base images switch to a user).
USER root
COPY ["environment.yml", "/opt/sifpack/environment.yml"]
RUN set -eu; \
    export MAMBA_ROOT_PREFIX=/opt/conda; \
    export CONDA_OVERRIDE_CUDA=12.6; \
    /bin/micromamba create -y -p /opt/env -f /opt/sifpack/environment.yml; \
    /bin/micromamba clean -a -y

# The env is active for every command: no conda activate, no entrypoint shim.
ENV PATH="/opt/env/bin:$PATH" \
    CONDA_PREFIX="/opt/env" \
    CONDA_DEFAULT_ENV="analysis" \
    PYTHONNOUSERSITE="1"

LABEL "sifpack.env-hash"="sha256:59aea38b4aa75633c9d2847409900b27e16d73d42002e6e33779c3f1c01d7b48" \
      "sifpack.env-name"="analysis" \
      "sifpack.preset"="cuda" \
      "sifpack.base-image"="mambaorg/micromamba:2.3.2-cuda12.6.3-ubuntu22.04" \
      "sifpack.template-version"="1" \
      "sifpack.version"="0.1.0" \
      "sifpack.build-hash"="sha256:3d1ff419cbd2914068287671b4e99913e48387435862467db0798d9039c5b0c6"

# What apptainer's %test does, checked here at build time.
RUN python -c 'import pandas, numpy, matplotlib, tqdm'

ENTRYPOINT ["python"]
