# syntax=docker/dockerfile:1
# Dockerfile for the conda environment "analysis", written by sifpack 0.1.0
# from the same recipe as the Apptainer definition file.
# Base preset "micromamba": micromamba 2.3 on Debian 12 (slim) — small and fast; the default
FROM mambaorg/micromamba:2.3.2-debian12-slim

# Install as root, as apptainer's %post does (some base images switch to a user).
USER root
COPY ["environment.yml", "/opt/sifpack/environment.yml"]
RUN set -eu; \
    export MAMBA_ROOT_PREFIX=/opt/conda; \
    /bin/micromamba create -y -p /opt/env -f /opt/sifpack/environment.yml; \
    /bin/micromamba clean -a -y

# The env is active for every command: no conda activate, no entrypoint shim.
ENV PATH="/opt/env/bin:$PATH" \
    CONDA_PREFIX="/opt/env" \
    CONDA_DEFAULT_ENV="analysis" \
    PYTHONNOUSERSITE="1"

LABEL "sifpack.env-hash"="sha256:59aea38b4aa75633c9d2847409900b27e16d73d42002e6e33779c3f1c01d7b48" \
      "sifpack.env-name"="analysis" \
      "sifpack.preset"="micromamba" \
      "sifpack.base-image"="mambaorg/micromamba:2.3.2-debian12-slim" \
      "sifpack.template-version"="1" \
      "sifpack.version"="0.1.0" \
      "sifpack.build-hash"="sha256:581dba019df4ab9a087fe7ce9cb31df2fcc2d48d454d7df5393d3771fd4067e1"

# What apptainer's %test does, checked here at build time.
RUN python -c 'import pandas, numpy, matplotlib, tqdm'

ENTRYPOINT ["python"]
