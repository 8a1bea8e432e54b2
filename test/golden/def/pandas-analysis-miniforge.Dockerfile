# Dockerfile for the conda environment "analysis", written by sifpack 0.1.0
# from the same recipe as the Apptainer definition file.
# Base preset "miniforge": Miniforge 25.3 (conda + conda-forge) on Ubuntu
FROM condaforge/miniforge3:25.3.0-1

# Install as root, as apptainer's %post does (some base images switch to a user);
# uid 0 by number: images without /etc/passwd (busybox, distroless) have no "root".
USER 0
COPY ["environment.yml", "/opt/sifpack/environment.yml"]
# The last command writes, for the SIF made from this image, what the definition
# file's %environment does (apptainer turns ENV into defaults and runs no
# activation hooks); apptainer and sifpack convert keep it, sourced after ENV.
RUN set -eu; \
    export PIP_NO_CACHE_DIR=1; \
    /opt/conda/bin/conda env create -p /opt/env -f /opt/sifpack/environment.yml; \
    /opt/conda/bin/conda clean -a -y; \
    rm -rf /root/.cache; \
    mkdir -p /.singularity.d/env && printf '%s\n' \
    '#!/bin/sh' \
    '# Written by sifpack: the same runtime environment as the definition file'\''s %environment.' \
    '# The env is active for exec, run and shell alike: no conda activate, no entrypoint.' \
    'export PATH=/opt/env/bin:"$PATH"' \
    'export CONDA_PREFIX=/opt/env' \
    'export CONDA_DEFAULT_ENV=analysis' \
    'export PYTHONNOUSERSITE=1' \
    '# Run the env'\''s conda activation hooks (GDAL_DATA, PROJ_DATA, ...) as conda activate would.' \
    'if [ -d /opt/env/etc/conda/activate.d ]; then' \
    '    for f in /opt/env/etc/conda/activate.d/*.sh; do [ -r "$f" ] && . "$f"; done' \
    fi \
    > /.singularity.d/env/91-sifpack-environment.sh

# The env is active for every command: no conda activate, no entrypoint shim.
ENV PATH="/opt/env/bin:$PATH" \
    CONDA_PREFIX="/opt/env" \
    CONDA_DEFAULT_ENV="analysis" \
    PYTHONNOUSERSITE="1"

LABEL "sifpack.env-hash"="sha256:c36b1f2f0c901c9e8630bccb4680e7e778d91f71153de880607bce7ac2869e52" \
      "sifpack.env-name"="analysis" \
      "sifpack.preset"="miniforge" \
      "sifpack.base-image"="condaforge/miniforge3:25.3.0-1" \
      "sifpack.template-version"="3" \
      "sifpack.version"="0.1.0" \
      "sifpack.build-hash"="sha256:0bc510487c4cd7b3286723f0ef53a64ff7ba559b861c82c9127e8dcd48fd71c2"

# What apptainer's %test does, checked here at build time.
RUN python -c 'import pandas, numpy, matplotlib, tqdm; import importlib.util as u; [u.find_spec(m) or print("sifpack test: no module", m, "(name guessed from its pip package)") for m in ["tabulate"]]'

ENTRYPOINT ["python"]
