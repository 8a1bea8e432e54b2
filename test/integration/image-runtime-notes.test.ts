/**
 * Issue 11, "Images": what an image sifpack builds does at run time under the
 * real Apptainer 1.4.5, the way the job scripts run it (`exec --cleanenv`):
 * the locale, /etc/passwd and /etc/group for images without them, and the
 * env's conda activation hooks.
 *
 * Apptainer's side is read from its source: internal/pkg/util/env/create.go
 * (`--cleanenv` sets LANG=C), internal/pkg/util/fs/files/action_script.sh
 * (the environment scripts run with the caller's variables cleared; `--env`
 * values are injected after 99-base.sh; `trap` is aliased to a warning),
 * internal/pkg/util/fs/files/passwd.go ("passwd file doesn't exist in
 * container, not updating").
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { service, tempDir } from '../helpers.js';
import { TEST_USER, apptainer, ensureTestUser } from './apptainer-harness.js';

const NOPASSWD = 'issue11-nopasswd:1';
let dir: string;
let env: NodeJS.ProcessEnv;
let envSif: string;
let nopasswdSif: string;
const docker = (args: string[], input?: string) => execFileSync('/usr/bin/docker', args, { env: { ...process.env, ...env }, input }).toString();

/**
 * A prefix as a user has it: a conda record, bin/python (the base image's
 * python3 stands in for the env's), and a third-party activation hook that
 * uses `trap`, which apptainer's interpreter does not support.
 */
const HOOK = `# as some packages' activate.d scripts do: clean up a temp file when the shell exits
trap 'rm -f "\${TMPDIR:-/tmp}/tool.$$"' EXIT
export TOOL_DATA="$CONDA_PREFIX/share/tool"
export PATH="$CONDA_PREFIX/libexec/tool:$PATH"
`;
async function makePrefix(p: string): Promise<void> {
  await fs.mkdir(path.join(p, 'conda-meta'), { recursive: true });
  await fs.mkdir(path.join(p, 'bin'), { recursive: true });
  await fs.mkdir(path.join(p, 'etc', 'conda', 'activate.d'), { recursive: true });
  await fs.writeFile(path.join(p, 'conda-meta', 'mytool-1.0-0.json'), JSON.stringify({ name: 'mytool', version: '1.0', build: '0', channel: 'https://conda.anaconda.org/conda-forge/noarch', subdir: 'noarch', depends: [] }));
  await fs.writeFile(path.join(p, 'bin', 'python'), '#!/bin/sh\nexec /usr/bin/python3 "$@"\n', { mode: 0o755 });
  await fs.writeFile(path.join(p, 'etc', 'conda', 'activate.d', 'tool-vars.sh'), HOOK);
}

beforeAll(async () => {
  env = { DOCKER_HOST: service('DOCKER_HOST'), SIFPACK_DOCKER_NETWORK: 'none' };
  ensureTestUser();
  dir = await tempDir('sifpack-runtime-notes-');
  await fs.chmod(dir, 0o755); // the unprivileged user reads the SIFs here
  const prefix = path.join(dir, 'envs', 'notes');
  await makePrefix(prefix);
  const r = await sifpack(['build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '-o', 'notes.sif'], { cwd: dir, env });
  expect(r.stderr).not.toMatch(/error/i);
  expect(r.code).toBe(0);
  envSif = path.join(dir, 'notes.sif');
  // The base image without /etc/passwd and /etc/group, as distroless and scratch-built images come.
  docker(['build', '-q', '--network', 'none', '-t', NOPASSWD, '-'], `FROM ${service('SIFPACK_TEST_BASE_IMAGE')}\nRUN rm /etc/passwd /etc/group\n`);
  nopasswdSif = path.join(dir, 'nopasswd.sif');
  const c = await sifpack(['convert', NOPASSWD, '-o', nopasswdSif], { env });
  expect(c.code).toBe(0);
  for (const s of [envSif, nopasswdSif]) await fs.chmod(s, 0o644);
}, 300_000);

afterAll(async () => {
  try {
    docker(['rmi', '-f', NOPASSWD]);
  } catch {
    /* not built */
  }
  await fs.rm(dir, { recursive: true, force: true });
});

const ENCODINGS = 'import sys; print(sys.getfilesystemencoding(), sys.stdout.encoding)';
// What a program that reads the C library's locale sees (Python's own C-locale
// coercion, PEP 538/540, turned off so it reports the locale as it is).
const LIBC_CODESET = ['env', 'PYTHONCOERCECLOCALE=0', 'python3', '-X', 'utf8=0', '-c', 'import locale; print(locale.nl_langinfo(locale.CODESET))'];

describe('locale: LANG defaults to C.UTF-8 under --cleanenv, and --env LANG=... wins', () => {
  it('exec --cleanenv: LANG=C.UTF-8, Python reports utf-8 utf-8, and the C library codeset is UTF-8', async () => {
    const lang = await apptainer(['exec', '--cleanenv', envSif, 'sh', '-c', 'echo "$LANG"']);
    expect(lang.stdout).toBe('C.UTF-8\n');
    expect((await apptainer(['exec', '--cleanenv', envSif, 'python3', '-c', ENCODINGS])).stdout).toBe('utf-8 utf-8\n');
    expect((await apptainer(['exec', '--cleanenv', envSif, ...LIBC_CODESET])).stdout).toBe('UTF-8\n');
  });

  it('as an unprivileged user too', async () => {
    const r = await apptainer(['exec', '--cleanenv', envSif, 'sh', '-c', 'echo "$LANG"'], { asUser: true });
    expect(r.stdout).toBe('C.UTF-8\n');
  });

  it('--env LANG=C wins over the default (no LC_ALL is set that would override it)', async () => {
    const r = await apptainer(['exec', '--cleanenv', '--env', 'LANG=C', envSif, 'sh', '-c', 'echo "$LANG|${LC_ALL-unset}"']);
    expect(r.stdout).toBe('C|unset\n');
    expect((await apptainer(['exec', '--cleanenv', '--env', 'LANG=C', envSif, ...LIBC_CODESET])).stdout).toBe('ANSI_X3.4-1968\n');
  });
});

describe('/etc/passwd and /etc/group: convert adds them when the image has none', () => {
  it('the converted image has root entries; the Docker image had neither file', async () => {
    expect(docker(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', NOPASSWD, '-c', 'ls /etc/passwd /etc/group 2>&1 || true'])).toMatch(/No such file[\s\S]*No such file/);
    // apptainer, run as root, appends "root:x:0:root" to the group file it binds in: only the first lines are the image's.
    const r = await apptainer(['exec', nopasswdSif, 'sh', '-c', 'head -1 /etc/passwd; head -1 /etc/group']);
    expect(r.stdout).toBe('root:x:0:0:root:/root:/bin/sh\nroot:x:0:\n');
  });

  // pwd.getpwuid(os.getuid()) is what getpass.getuser() falls back to without USER/LOGNAME
  // (the base image's python3-minimal has no getpass module).
  it('an unprivileged user: no "passwd file doesn\'t exist" warning, `id -un` and pwd.getpwuid name the user', async () => {
    const r = await apptainer(['exec', '--cleanenv', nopasswdSif, 'sh', '-c', 'id -un; python3 -c "import os, pwd; print(pwd.getpwuid(os.getuid()).pw_name)"'], { asUser: true });
    expect(r.stderr).not.toMatch(/passwd file doesn't exist|group file doesn't exist/);
    expect(r.stdout).toBe(`${TEST_USER}\n${TEST_USER}\n`);
    expect(r.code).toBe(0);
  });
});

describe('conda activation hooks: captured at build time, so exec runs no third-party shell', () => {
  it('the image carries the captured exports as a static script', async () => {
    const r = await apptainer(['exec', envSif, 'cat', '/.singularity.d/env/92-sifpack-conda-activate.sh']);
    expect(r.stdout).toBe('#!/bin/sh\n# Written by sifpack at build time: what the conda activation hooks of /opt/env export.\nexport PATH="/opt/env/libexec/tool:""$PATH"\nexport TOOL_DATA="/opt/env/share/tool"\n');
  });

  it('exec --cleanenv: the hook\'s variables are set, PATH prepended, and apptainer has no `trap` to warn about', async () => {
    const r = await apptainer(['exec', '--cleanenv', envSif, 'sh', '-c', 'echo "$TOOL_DATA"; echo "$PATH"']);
    expect(r.stderr).not.toMatch(/not supported by this shell interpreter/);
    const [data, p] = r.stdout.split('\n');
    expect(data).toBe('/opt/env/share/tool');
    expect(p!.split(':').slice(0, 2)).toEqual(['/opt/env/libexec/tool', '/opt/env/bin']);
    expect(r.code).toBe(0);
  });
});
