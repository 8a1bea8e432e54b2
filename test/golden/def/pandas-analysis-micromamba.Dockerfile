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

LABEL "sifpack.env-hash"="sha256:c36b1f2f0c901c9e8630bccb4680e7e778d91f71153de880607bce7ac2869e52" \
      "sifpack.env-name"="analysis" \
      "sifpack.preset"="micromamba" \
      "sifpack.base-image"="mambaorg/micromamba:2.3.2-debian12-slim" \
      "sifpack.template-version"="1" \
      "sifpack.version"="0.1.0" \
      "sifpack.build-hash"="sha256:69ce431a1ab71dbb5f93da4ea9bd6baa88c1d25f5871f831d1b020058b9e3575"

# What apptainer's %test does, checked here at build time.
RUN python -c 'import pandas, numpy, matplotlib, tqdm; import importlib.util as u; [u.find_spec(m) or print("sifpack test: no module", m, "(name guessed from its pip package)") for m in ["tabulate"]]'

ENTRYPOINT ["python"]
