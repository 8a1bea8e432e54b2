/**
 * The env's conda activation hooks (etc/conda/activate.d/*.sh), captured once
 * while the image is built.
 *
 * Format (the build step, one shell line in %post and in the Dockerfile's RUN):
 *   if [ -d /opt/env/etc/conda/activate.d ] && [ -x /opt/env/bin/python ]; then
 *     /opt/env/bin/python -c 'exec("...")' /opt/env /.singularity.d/env/92-sifpack-conda-activate.sh || true; fi
 * and what it writes:
 *   #!/bin/sh
 *   export GDAL_DATA="/opt/env/share/gdal"
 *   export PATH="/opt/env/libexec/x:""$PATH"
 *
 * Why: apptainer sources the environment scripts in its own embedded shell
 * interpreter (mvdan.cc/sh), where `trap`, `fg` and `bg` are unsupported
 * (internal/pkg/util/fs/files/action_script.sh) and any other construct it
 * does not know breaks every exec. Captured, exec runs no third-party shell.
 * The hooks are sourced twice, with different HOME and working directory; a
 * variable that differs (a value computed at run time), a hook that fails, or
 * an env without python leaves no capture, and the hooks are then sourced at
 * run time as before (environmentLines).
 */
import { shellJoin, shellQuote } from './shell-quote.js';

/** After the def's 90-environment.sh and the Dockerfile's 91-sifpack-environment.sh. */
export const ACTIVATE_SCRIPT = '/.singularity.d/env/92-sifpack-conda-activate.sh';

/** Run by the env's own python: argv = [prefix, output file]. Python 3.5+; otherwise it fails and hooks stay sourced. */
export const CAPTURE_PY = `import glob, os, re, subprocess, sys, tempfile
prefix, out = sys.argv[1], sys.argv[2]
hooks = sorted(glob.glob(os.path.join(prefix, 'etc/conda/activate.d/*.sh')))
base_path = prefix + '/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
homes = [tempfile.mkdtemp(), tempfile.mkdtemp()]
def clean():
    for h in [h for h in homes if os.path.isdir(h)]:
        for d, dirs, files in os.walk(h, topdown=False):
            for n in files: os.remove(os.path.join(d, n))
            for n in dirs: os.rmdir(os.path.join(d, n))
        os.rmdir(h)
def give_up(why):
    clean()
    if os.path.exists(out): os.remove(out)
    sys.stderr.write('sifpack: conda activation hooks sourced at run time (not captured: %s)\\n' % why)
    sys.exit(0)
MARK = '\\0sifpack-env\\0'
def run(home):
    # No C-locale coercion: it would add LC_CTYPE to the dumped environment (PEP 538).
    env = {'HOME': home, 'PATH': base_path, 'CONDA_PREFIX': prefix, 'PYTHONCOERCECLOCALE': '0'}
    dump = 'import os, sys; sys.stdout.write(%r + chr(0).join(k + chr(61) + v for k, v in os.environ.items()))' % MARK
    script = 'for f in "$@"; do . "$f"; done; exec "$0" -c "$SIFPACK_DUMP"'
    r = subprocess.run(['/bin/sh', '-c', script, sys.executable] + hooks, env=dict(env, SIFPACK_DUMP=dump), cwd=home, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
    if r.returncode != 0 or MARK not in r.stdout: give_up('a hook failed under /bin/sh')
    found = dict(kv.split('=', 1) for kv in r.stdout.rsplit(MARK, 1)[1].split('\\0'))
    found.pop('SIFPACK_DUMP', None)
    return env, found
q = lambda v: '"' + re.sub(r'([\\\\"$\`])', r'\\\\\\1', v) + '"'
(env, a), (_, b) = run(homes[0]), run(homes[1])
clean()
exports = []
for k in sorted(set(a) | set(b)):
    if k in ('PWD', 'OLDPWD', 'SHLVL', '_', 'HOME'): continue
    x, y = a.get(k), b.get(k)
    if x != y: give_up(k + ' depends on HOME or the working directory')
    if x is None or x == env.get(k): continue
    if '\\n' in x: give_up(k + ' holds a line break')
    if k == 'PATH':
        if not x.endswith(base_path): give_up('PATH is replaced, not prepended to')
        exports.append('export PATH=' + q(x[:-len(base_path)]) + '"$PATH"')
    else: exports.append('export %s=%s' % (k, q(x)))
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out + '.tmp', 'w') as f:
    f.write('#!/bin/sh\\n# Written by sifpack at build time: what the conda activation hooks of %s export.\\n' % prefix + ''.join(e + '\\n' for e in exports))
os.chmod(out + '.tmp', 0o755)
os.rename(out + '.tmp', out)
`;

/** The build step that writes ACTIVATE_SCRIPT, or nothing; never fails the build. */
export function captureActivationLine(envPrefix: string): string {
  const hooks = shellQuote(`${envPrefix}/etc/conda/activate.d`);
  const python = shellQuote(`${envPrefix}/bin/python`);
  return `if [ -d ${hooks} ] && [ -x ${python} ]; then ${python} -c ${shellQuote(`exec(${JSON.stringify(CAPTURE_PY)})`)} ${shellJoin([envPrefix, ACTIVATE_SCRIPT])} || true; fi`;
}
