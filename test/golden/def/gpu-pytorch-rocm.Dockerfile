# Dockerfile for the conda environment "train", written by sifpack 0.1.0
# from the same recipe as the Apptainer definition file.
# Base preset "rocm": micromamba 2.3 on Debian 12 (slim) with PyTorch's ROCm 6.2 pip index, for AMD GPU jobs
FROM mambaorg/micromamba:2.3.2-debian12-slim

# Install as root, as apptainer's %post does (some base images switch to a user);
# uid 0 by number: images without /etc/passwd (busybox, distroless) have no "root".
USER 0
COPY ["environment-rocm.yml", "/opt/sifpack/environment.yml"]
# The last command writes, for the SIF made from this image, what the definition
# file's %environment does (apptainer turns ENV into defaults and runs no
# activation hooks); apptainer and sifpack convert keep it, sourced after ENV.
RUN set -eu; \
    export MAMBA_ROOT_PREFIX=/opt/conda; \
    export PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/rocm6.2; \
    export PIP_NO_CACHE_DIR=1; \
    /bin/micromamba create -y -p /opt/env -f /opt/sifpack/environment.yml; \
    /bin/micromamba clean -a -y; \
    rm -rf /root/.cache; \
    if [ -d /opt/env/etc/conda/activate.d ] && [ -x /opt/env/bin/python ]; then /opt/env/bin/python -c 'exec("import glob, os, re, subprocess, sys, tempfile\nprefix, out = sys.argv[1], sys.argv[2]\nhooks = sorted(glob.glob(os.path.join(prefix, '\''etc/conda/activate.d/*.sh'\'')))\nbase_path = prefix + '\''/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'\''\nhomes = [tempfile.mkdtemp(), tempfile.mkdtemp()]\ndef clean():\n    for h in [h for h in homes if os.path.isdir(h)]:\n        for d, dirs, files in os.walk(h, topdown=False):\n            for n in files: os.remove(os.path.join(d, n))\n            for n in dirs: os.rmdir(os.path.join(d, n))\n        os.rmdir(h)\ndef give_up(why):\n    clean()\n    if os.path.exists(out): os.remove(out)\n    sys.stderr.write('\''sifpack: conda activation hooks sourced at run time (not captured: %s)\\n'\'' % why)\n    sys.exit(0)\nMARK = '\''\\0sifpack-env\\0'\''\ndef run(home):\n    # No C-locale coercion: it would add LC_CTYPE to the dumped environment (PEP 538).\n    env = {'\''HOME'\'': home, '\''PATH'\'': base_path, '\''CONDA_PREFIX'\'': prefix, '\''PYTHONCOERCECLOCALE'\'': '\''0'\''}\n    dump = '\''import os, sys; sys.stdout.write(%r + chr(0).join(k + chr(61) + v for k, v in os.environ.items()))'\'' % MARK\n    script = '\''for f in \"$@\"; do . \"$f\"; done; exec \"$0\" -c \"$SIFPACK_DUMP\"'\''\n    r = subprocess.run(['\''/bin/sh'\'', '\''-c'\'', script, sys.executable] + hooks, env=dict(env, SIFPACK_DUMP=dump), cwd=home, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)\n    if r.returncode != 0 or MARK not in r.stdout: give_up('\''a hook failed under /bin/sh'\'')\n    found = dict(kv.split('\''='\'', 1) for kv in r.stdout.rsplit(MARK, 1)[1].split('\''\\0'\''))\n    found.pop('\''SIFPACK_DUMP'\'', None)\n    return env, found\nq = lambda v: '\''\"'\'' + re.sub(r'\''([\\\\\"$`])'\'', r'\''\\\\\\1'\'', v) + '\''\"'\''\n(env, a), (_, b) = run(homes[0]), run(homes[1])\nclean()\nexports = []\nfor k in sorted(set(a) | set(b)):\n    if k in ('\''PWD'\'', '\''OLDPWD'\'', '\''SHLVL'\'', '\''_'\'', '\''HOME'\''): continue\n    x, y = a.get(k), b.get(k)\n    if x != y: give_up(k + '\'' depends on HOME or the working directory'\'')\n    if x is None or x == env.get(k): continue\n    if '\''\\n'\'' in x: give_up(k + '\'' holds a line break'\'')\n    if k == '\''PATH'\'':\n        if not x.endswith(base_path): give_up('\''PATH is replaced, not prepended to'\'')\n        exports.append('\''export PATH='\'' + q(x[:-len(base_path)]) + '\''\"$PATH\"'\'')\n    else: exports.append('\''export %s=%s'\'' % (k, q(x)))\nos.makedirs(os.path.dirname(out), exist_ok=True)\nwith open(out + '\''.tmp'\'', '\''w'\'') as f:\n    f.write('\''#!/bin/sh\\n# Written by sifpack at build time: what the conda activation hooks of %s export.\\n'\'' % prefix + '\'''\''.join(e + '\''\\n'\'' for e in exports))\nos.chmod(out + '\''.tmp'\'', 0o755)\nos.rename(out + '\''.tmp'\'', out)\n")' /opt/env /.singularity.d/env/92-sifpack-conda-activate.sh || true; fi; \
    mkdir -p /.singularity.d/env && printf '%s\n' \
    '#!/bin/sh' \
    '# Written by sifpack: the same runtime environment as the definition file'\''s %environment.' \
    '# The env is active for exec, run and shell alike: no conda activate, no entrypoint.' \
    'export LANG="${LANG:-C.UTF-8}"' \
    'export PATH=/opt/env/bin:"$PATH"' \
    'export CONDA_PREFIX=/opt/env' \
    'export CONDA_DEFAULT_ENV=train' \
    'export PYTHONNOUSERSITE=1' \
    'export OMP_NUM_THREADS=1' \
    '# The env'\''s conda activation hooks (GDAL_DATA, PROJ_DATA, ...): what they export was captured' \
    '# at build time into /.singularity.d/env/92-sifpack-conda-activate.sh; sourced here only when that was not possible.' \
    'if [ ! -f /.singularity.d/env/92-sifpack-conda-activate.sh ] && [ -d /opt/env/etc/conda/activate.d ]; then' \
    '    for f in /opt/env/etc/conda/activate.d/*.sh; do [ -r "$f" ] && . "$f"; done' \
    fi \
    > /.singularity.d/env/91-sifpack-environment.sh; \
    printf '%s\n' \
    'Conda environment "train" packed by sifpack 0.1.0 (preset rocm).' \
    'Run a script:   apptainer exec IMAGE.sif python script.py ARGS' \
    'The environment file it was built from: /opt/sifpack/' \
    Packages: \
    '  python=3.11' \
    '  numpy=1.26.4' \
    '  pyyaml=6.0.1' \
    '  pip=24.0' \
    '  pip: torch==2.5.1' \
    '  pip: torchvision==0.20.1' \
    '  pip: wandb==0.17.0' \
    > /.singularity.d/runscript.help

# The env is active for every command: no conda activate, no entrypoint shim.
ENV PATH="/opt/env/bin:$PATH" \
    CONDA_PREFIX="/opt/env" \
    CONDA_DEFAULT_ENV="train" \
    PYTHONNOUSERSITE="1" \
    OMP_NUM_THREADS="1"

LABEL "sifpack.env-hash"="sha256:205f482cae90cb9243847579b2db7475a034ebdff6b1da906e823118ed0796cd" \
      "sifpack.env-name"="train" \
      "sifpack.preset"="rocm" \
      "sifpack.base-image"="mambaorg/micromamba:2.3.2-debian12-slim" \
      "sifpack.template-version"="3" \
      "sifpack.version"="0.1.0" \
      "sifpack.build-hash"="sha256:d6b73116ea8befd2df4d92f8d733528fc2828d96045356afe273b9c2023c9879"

# What apptainer's %test does, checked here at build time.
RUN python -c 'import numpy, yaml, torch, torchvision; import importlib.util as u; [u.find_spec(m) or print("sifpack test: no module", m, "(name guessed from its pip package)") for m in ["wandb"]]'

ENTRYPOINT ["python"]
