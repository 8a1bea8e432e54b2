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

LABEL "sifpack.env-hash"="sha256:c36b1f2f0c901c9e8630bccb4680e7e778d91f71153de880607bce7ac2869e52" \
      "sifpack.env-name"="analysis" \
      "sifpack.preset"="miniforge" \
      "sifpack.base-image"="condaforge/miniforge3:25.3.0-1" \
      "sifpack.template-version"="1" \
      "sifpack.version"="0.1.0" \
      "sifpack.build-hash"="sha256:d82e392676529446abecfafaad184c45fb258beebd86ebf7dbb13a3db666ad45"

# What apptainer's %test does, checked here at build time.
RUN python -c 'import pandas, numpy, matplotlib, tqdm; import importlib.util as u; [u.find_spec(m) or print("sifpack test: no module", m, "(name guessed from its pip package)") for m in ["tabulate"]]'

ENTRYPOINT ["python"]
