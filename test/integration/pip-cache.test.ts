/**
 * Issue 11, "pip's download cache lands in the image": the Dockerfile sifpack
 * renders, built by the real Docker engine, with a pip step that downloads a
 * wheel over HTTP from a loopback index (the way it downloads torch from PyPI).
 *
 * micromamba cannot run here (no conda channel, no Docker Hub), so the two
 * micromamba steps of the rendered install RUN are replaced by what micromamba
 * itself runs for an env file's `pip:` section — `PREFIX/bin/python -m pip
 * install -r FILE --no-input` (mamba-org/mamba, libmamba/src/api/install.cpp,
 * get_other_pkg_mgr_install_instructions) — with a real pip (Debian's
 * python3-pip-whl) in a venv at /opt/env. Every other line of the Dockerfile,
 * PIP_NO_CACHE_DIR and the final `rm -rf /root/.cache` included, is sifpack's
 * own text. A control build of the same step without those two lines shows
 * the cache that the assertion would catch.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sifpack } from '../e2e/cli.js';
import { service, tempDir } from '../helpers.js';

const HOST_STDLIB = '/usr/lib/python3.11';
const PIP_WHEEL_DIR = '/usr/share/python-wheels';
const PIP_BASE = 'issue11-pip-python:1';
const TAG = 'issue11-pip-cache:1';
const CONTROL_TAG = 'issue11-pip-cache-control:1';

let dir: string;
let server: http.Server;
let port: number;
const fetched: string[] = [];
const dockerEnv = () => ({ ...process.env, DOCKER_HOST: service('DOCKER_HOST') });
const docker = (args: string[], opts: { cwd?: string } = {}) => execFileSync('/usr/bin/docker', args, { env: dockerEnv(), cwd: opts.cwd, maxBuffer: 64 << 20 }).toString();
/** docker build with the Dockerfile on stdin, asynchronously: the index below is served by this process. */
function dockerBuild(dockerfile: string, tag: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('/usr/bin/docker', ['build', '-q', '--no-cache', '--network', 'host', '-f', '-', '-t', tag, dir], { env: dockerEnv(), maxBuffer: 64 << 20 }, (err, _out, stderr) =>
      err ? reject(new Error(`docker build ${tag} failed: ${stderr}`)) : resolve(),
    );
    child.stdin!.end(dockerfile);
  });
}
const inImage = (tag: string, script: string) => docker(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', tag, '-c', script]);

/** A one-module wheel (PEP 427: the module, METADATA, WHEEL, RECORD), written by Python's zipfile. */
const MAKE_WHEEL = `
import base64, hashlib, sys, zipfile
name, ver, out = sys.argv[1:4]
files = {f"{name}/__init__.py": "VALUE = 'from the loopback index'\\n",
         f"{name}-{ver}.dist-info/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {ver}\\n",
         f"{name}-{ver}.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: sifpack-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
record = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b'=').decode()},{len(c)}" for p, c in files.items()]
files[f"{name}-{ver}.dist-info/RECORD"] = "\\n".join(record + [f"{name}-{ver}.dist-info/RECORD,,"]) + "\\n"
with zipfile.ZipFile(out, "w") as z:
    for p, c in files.items():
        z.writestr(p, c)
`;

/**
 * The base image sifpack's Dockerfile starts FROM here: the services' Debian
 * python3-minimal plus the rest of Debian's standard library (pip needs
 * pprint, json, ...: copied from the host's libpython3.11-stdlib, the same
 * Debian release) and pip in a venv at /opt/env, where micromamba would have
 * put the env. No EXTERNALLY-MANAGED marker: a conda env has none.
 */
async function buildPipBase(): Promise<void> {
  const ctx = path.join(dir, 'pip-base');
  await fs.mkdir(ctx, { recursive: true });
  const wheels = (await fs.readdir(PIP_WHEEL_DIR).catch(() => [])).filter((f) => /^pip-.*\.whl$/.test(f));
  if (wheels.length === 0 || !(await fs.stat(HOST_STDLIB).catch(() => undefined))) {
    throw new Error(`this test needs Debian's python3 standard library (${HOST_STDLIB}) and pip wheel (${PIP_WHEEL_DIR}/pip-*.whl, package python3-pip-whl) on the host`);
  }
  const imagePy = inImage(service('SIFPACK_TEST_BASE_IMAGE'), 'python3 -c "import sys; print(*sys.version_info[:2], sep=\'.\')"').trim();
  expect(imagePy, 'the base image and the host must share the Python minor version whose stdlib is copied').toBe(path.basename(HOST_STDLIB).replace('python', ''));
  execFileSync('tar', ['-C', path.dirname(HOST_STDLIB), '-cf', path.join(ctx, 'stdlib.tar'), '--exclude=test', '--exclude=__pycache__', '--exclude=dist-packages', '--exclude=site-packages', '--exclude=EXTERNALLY-MANAGED', path.basename(HOST_STDLIB)]);
  await fs.copyFile(path.join(PIP_WHEEL_DIR, wheels[0]!), path.join(ctx, 'pip.whl'));
  await fs.writeFile(
    path.join(ctx, 'Dockerfile'),
    [
      `FROM ${service('SIFPACK_TEST_BASE_IMAGE')}`,
      'ADD stdlib.tar /usr/lib/',
      'COPY pip.whl /tmp/pip.whl',
      'RUN python3 -m venv --without-pip /opt/env && python3 -m zipfile -e /tmp/pip.whl /opt/env/lib/python3.11/site-packages/ && rm /tmp/pip.whl && /opt/env/bin/python -m pip --version',
      '',
    ].join('\n'),
  );
  docker(['build', '-q', '--network', 'none', '-t', PIP_BASE, ctx]);
}

/** A PyPI-like index on loopback: a find-links page and the wheel with files.pythonhosted.org's caching headers. */
async function startIndex(wheel: string): Promise<void> {
  const name = path.basename(wheel);
  const data = await fs.readFile(wheel);
  server = http.createServer((req, res) => {
    fetched.push(req.url ?? '');
    if (req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' }).end(`<!DOCTYPE html><html><body><a href="${name}">${name}</a></body></html>\n`);
    } else if (req.url === `/${name}`) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': data.length, 'Cache-Control': 'max-age=365000000, immutable, public' }).end(data);
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
}

/** The install RUN's commands, one per element, as sifpack joined them (`; \` + newline). */
function installCommands(dockerfile: string): { before: string; commands: string[]; after: string } {
  const m = /^RUN (set -eu;[\s\S]*?)\n\n/m.exec(dockerfile);
  if (!m) throw new Error(`no install RUN in the rendered Dockerfile:\n${dockerfile}`);
  return { before: dockerfile.slice(0, m.index), commands: m[1]!.split('; \\\n    '), after: dockerfile.slice(m.index + m[0].length) };
}

/**
 * The rendered Dockerfile with FROM the pip base image and micromamba's two
 * steps swapped for the pip command micromamba runs; `drop` removes rendered
 * commands (the control build).
 */
function testDockerfile(rendered: string, drop: (c: string) => boolean = () => false): string {
  const { before, commands, after } = installCommands(rendered);
  const swapped = commands
    .filter((c) => !drop(c))
    .flatMap((c) => {
      if (/^\/bin\/micromamba create /.test(c)) return ['/opt/env/bin/python -m pip install -r /opt/sifpack/pip-requirements.txt --no-input'];
      if (/^\/bin\/micromamba clean /.test(c)) return [];
      return [c];
    });
  return `${before.replace(/^FROM .*$/m, `FROM ${PIP_BASE}`).replace(/^(COPY .*)$/m, '$1\nCOPY ["pip-requirements.txt", "/opt/sifpack/pip-requirements.txt"]')}RUN ${swapped.join('; \\\n    ')}\n\n${after}`;
}

const PIP_LINES = () => ['--no-index', '--trusted-host 127.0.0.1', `--find-links http://127.0.0.1:${port}/`, 'tinypkg==1.0'];
let rendered: string;

beforeAll(async () => {
  service('DOCKER_HOST');
  dir = await tempDir('sifpack-pip-cache-');
  const wheel = path.join(dir, 'tinypkg-1.0-py3-none-any.whl');
  execFileSync('python3', ['-c', MAKE_WHEEL, 'tinypkg', '1.0', wheel]);
  await startIndex(wheel);
  await buildPipBase();
  const envYml = ['name: pipcache', 'channels:', '  - conda-forge', 'dependencies:', '  - python=3.11', '  - pip', '  - pip:', ...PIP_LINES().map((l) => `      - ${l}`), ''].join('\n');
  await fs.writeFile(path.join(dir, 'environment.yml'), envYml);
  await fs.writeFile(path.join(dir, '.dockerignore'), 'pip-base\n*.whl\n');
  // What micromamba writes to its temporary requirements file: the pip: lines, one per line.
  await fs.writeFile(path.join(dir, 'pip-requirements.txt'), `${PIP_LINES().join('\n')}\n`);
  const r = await sifpack(['def', 'environment.yml', '--format', 'docker', '-o', 'Dockerfile.rendered'], { cwd: dir });
  expect(r.stderr).not.toMatch(/error/i);
  expect(r.code).toBe(0);
  rendered = await fs.readFile(path.join(dir, 'Dockerfile.rendered'), 'utf8');
}, 240_000);

afterAll(async () => {
  server?.close();
  for (const t of [TAG, CONTROL_TAG, PIP_BASE]) {
    try {
      docker(['rmi', '-f', t]);
    } catch {
      /* not built */
    }
  }
  await fs.rm(dir, { recursive: true, force: true });
});

describe('pip cache: the rendered install step keeps no wheel cache in the image (real Docker engine)', () => {
  it('the install RUN sets PIP_NO_CACHE_DIR=1 before the solve and removes /root/.cache after it', () => {
    const { commands } = installCommands(rendered);
    const at = (re: RegExp) => commands.findIndex((c) => re.test(c));
    expect(at(/^export PIP_NO_CACHE_DIR='?1'?$/)).toBeGreaterThanOrEqual(0);
    expect(at(/^export PIP_NO_CACHE_DIR/)).toBeLessThan(at(/micromamba create /));
    expect(at(/^rm -rf \/root\/\.cache$/)).toBeGreaterThan(at(/micromamba clean /));
  });

  it('the control: the same pip step without those two lines leaves the downloaded wheel in /root/.cache/pip', async () => {
    const control = testDockerfile(rendered, (c) => /PIP_NO_CACHE_DIR|\/root\/\.cache/.test(c));
    expect(control).not.toContain('PIP_NO_CACHE_DIR');
    await dockerBuild(control, CONTROL_TAG);
    const files = inImage(CONTROL_TAG, 'find /root/.cache/pip -type f | wc -l; du -sb /root/.cache/pip | cut -f1').trim().split('\n').map(Number);
    expect(files[0]).toBeGreaterThan(0);
    expect(files[1]).toBeGreaterThan(1000);
  }, 180_000);

  it("with sifpack's lines the wheel is downloaded and installed, and nothing is left in /root/.cache", async () => {
    fetched.length = 0;
    const text = testDockerfile(rendered);
    expect(text).toMatch(/^ {4}export PIP_NO_CACHE_DIR='?1'?; \\$/m);
    await dockerBuild(text, TAG);
    expect(fetched).toContain('/tinypkg-1.0-py3-none-any.whl');
    expect(inImage(TAG, 'python -c "import tinypkg; print(tinypkg.VALUE)"')).toBe('from the loopback index\n');
    expect(inImage(TAG, 'if [ -e /root/.cache ]; then find /root/.cache; else echo "no /root/.cache"; fi')).toBe('no /root/.cache\n');
  }, 180_000);
});
