# syntax=docker/dockerfile:1
# Dockerfile for the conda environment "analysis", written by sifpack 0.1.0
# from the same recipe as the Apptainer definition file.
# Base preset "micromamba": micromamba 2.3 on Debian 12 (slim) — small and fast; the default
FROM mambaorg/micromamba:2.3.2-debian12-slim

# Install as root, as apptainer's %post does (some base images switch to a user);
# uid 0 by number: images without /etc/passwd (busybox, distroless) have no "root".
USER 0
COPY ["environment.yml", "/opt/sifpack/environment.yml"]
# The last command writes, for the SIF made from this image, what the definition
# file's %environment does (apptainer turns ENV into defaults and runs no
# activation hooks); apptainer and sifpack convert keep it, sourced after ENV.
RUN set -eu; \
    export MAMBA_ROOT_PREFIX=/opt/conda; \
    /bin/micromamba create -y -p /opt/env -f /opt/sifpack/environment.yml; \
    /bin/micromamba clean -a -y; \
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
    > /.singularity.d/env/91-sifpack-environment.sh; \
    printf '%s\n' \
    'Conda environment "analysis" packed by sifpack 0.1.0 (preset micromamba).' \
    'Run a script:   apptainer exec IMAGE.sif python script.py ARGS' \
    'The environment file it was built from: /opt/sifpack/' \
    Packages: \
    '  python=3.11.8' \
    '  pandas=2.2.1' \
    '  pip=24.0' \
    '  numpy=1.26.4' \
    '  matplotlib-base=3.8.3' \
    '  pip: tabulate==0.9.0' \
    '  pip: tqdm==4.66.2' \
    > /.singularity.d/runscript.help

# The env is active for every command: no conda activate, no entrypoint shim.
ENV PATH="/opt/env/bin:$PATH" \
    CONDA_PREFIX="/opt/env" \
    CONDA_DEFAULT_ENV="analysis" \
    PYTHONNOUSERSITE="1"

LABEL "sifpack.env-hash"="sha256:c36b1f2f0c901c9e8630bccb4680e7e778d91f71153de880607bce7ac2869e52" \
      "sifpack.env-name"="analysis" \
      "sifpack.preset"="micromamba" \
      "sifpack.base-image"="mambaorg/micromamba:2.3.2-debian12-slim" \
      "sifpack.template-version"="2" \
      "sifpack.version"="0.1.0" \
      "sifpack.build-hash"="sha256:e4ead30cfdbd4ed9ae62930a2370579ec11fe729470e08da844492fe1d10a338"

# What apptainer's %test does, checked here at build time.
RUN python -c 'import pandas, numpy, matplotlib, tqdm; import importlib.util as u; [u.find_spec(m) or print("sifpack test: no module", m, "(name guessed from its pip package)") for m in ["tabulate"]]'

ENTRYPOINT ["python"]
