# syntax=docker/dockerfile:1
# Dockerfile for the conda environment "analysis", written by sifpack 0.1.0
# from the same recipe as the Apptainer definition file.
# Base preset "miniforge": Miniforge 25.3 (conda + conda-forge) on Ubuntu
FROM condaforge/miniforge3:25.3.0-1

# Install as root, as apptainer's %post does (some base images switch to a user).
USER root
COPY ["environment.yml", "/opt/sifpack/environment.yml"]
RUN set -eu; \
    /opt/conda/bin/conda env create -p /opt/env -f /opt/sifpack/environment.yml; \
    /opt/conda/bin/conda clean -a -y

# The env is active for every command: no conda activate, no entrypoint shim.
ENV PATH="/opt/env/bin:$PATH" \
    CONDA_PREFIX="/opt/env" \
    CONDA_DEFAULT_ENV="analysis" \
    PYTHONNOUSERSITE="1"

LABEL "sifpack.env-hash"="sha256:59aea38b4aa75633c9d2847409900b27e16d73d42002e6e33779c3f1c01d7b48" \
      "sifpack.env-name"="analysis" \
      "sifpack.preset"="miniforge" \
      "sifpack.base-image"="condaforge/miniforge3:25.3.0-1" \
      "sifpack.template-version"="1" \
      "sifpack.version"="0.1.0" \
      "sifpack.build-hash"="sha256:75482ebc851fa905a70a686fa7d0c9e9699924fe343bd899eca8858056f004a6"

# What apptainer's %test does, checked here at build time.
RUN python -c 'import pandas, numpy, matplotlib, tqdm'

ENTRYPOINT ["python"]
