/**
 * Issue 11, "Images" and "AMD GPUs": what the rendered def file, Dockerfile
 * and presets say, checked line by line (the builds themselves are in
 * test/integration/pip-cache.test.ts and image-runtime-notes.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPreset } from '../../src/config/presets.js';
import { environmentWarnings } from '../../src/model/environment.js';
import { buildRecipe } from '../../src/model/recipe.js';
import { vcsSchemes } from '../../src/model/vcs.js';
import { ACTIVATE_SCRIPT, captureActivationLine } from '../../src/render/activation.js';
import { environmentLines, renderDef } from '../../src/render/def.js';
import { renderDockerfile } from '../../src/render/dockerfile.js';
import { ROOT, expectGolden } from '../helpers.js';

const spec = (pip: string[] = []) => ({ name: 'demo', channels: ['conda-forge'], dependencies: ['python=3.11', 'pip'], pip, variables: {} });
const envFile = { source: 'environment.yml', name: 'environment.yml', text: 'name: demo\n' };

/** The body of one %section of a def file. */
function section(def: string, name: string): string {
  const m = new RegExp(`^%${name}\\n([\\s\\S]*?)(?=^%\\w+\\n|$(?![\\s\\S]))`, 'm').exec(def);
  if (!m) throw new Error(`no %${name} in:\n${def}`);
  return m[1]!;
}

async function recipe(pip: string[] = [], base = 'micromamba') {
  const preset = await loadPreset(base, []);
  return buildRecipe({ preset, spec: spec(pip), source: { kind: 'env-file', envFile }, sifpackVersion: '0.0.0' });
}

describe('pip cache in images', () => {
  it('def %post and the Dockerfile RUN both set PIP_NO_CACHE_DIR=1 before the solve and remove /root/.cache after it', async () => {
    const r = await recipe(['requests==2.32.3']);
    const post = section(renderDef(r, { version: '0', defName: 'x.def' }).text, 'post');
    expect(post.indexOf('export PIP_NO_CACHE_DIR=1')).toBeGreaterThan(0);
    expect(post.indexOf('export PIP_NO_CACHE_DIR=1')).toBeLessThan(post.indexOf('micromamba create'));
    expect(post.indexOf('rm -rf /root/.cache')).toBeGreaterThan(post.indexOf('micromamba clean'));
    const run = renderDockerfile(r, { version: '0' }).text;
    expect(run.indexOf('export PIP_NO_CACHE_DIR=1; \\')).toBeLessThan(run.indexOf('micromamba create'));
    expect(run.indexOf('rm -rf /root/.cache; \\')).toBeGreaterThan(run.indexOf('micromamba clean'));
  });
});

describe('Dockerfile front matter', () => {
  it('has no `# syntax=` line: BuildKit would fetch a frontend image from Docker Hub, and no newer syntax is used', async () => {
    const text = renderDockerfile(await recipe(), { version: '0' }).text;
    expect(text).not.toMatch(/^#\s*syntax\s*=/im);
    expect(await fs.readFile(path.join(ROOT, 'templates', 'Dockerfile.mustache'), 'utf8')).not.toMatch(/syntax=/);
  });
});

describe('defs/cuda.yml', () => {
  it("states the real minimum driver (525, CUDA 12.x minor version compatibility) and the PTX JIT caveat, citing NVIDIA's document", async () => {
    const cuda = await loadPreset('cuda', []);
    const notes = cuda.notes.join('\n');
    expect(notes).toMatch(/>= 525/);
    expect(notes).toMatch(/PTX/);
    expect(notes).toContain('https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html');
    expect(notes).not.toMatch(/must support CUDA 12\.6 \(driver >= 560\)/);
  });
});

describe('conda activation hooks captured at build time (the capture script run by a real python3)', () => {
  async function capture(hooks: Record<string, string>): Promise<{ script: string | undefined; stderr: string }> {
    const prefix = await fs.mkdtemp(path.join(os.tmpdir(), 'sifpack-hooks-'));
    await fs.mkdir(path.join(prefix, 'etc', 'conda', 'activate.d'), { recursive: true });
    for (const [name, text] of Object.entries(hooks)) await fs.writeFile(path.join(prefix, 'etc', 'conda', 'activate.d', name), text);
    const out = path.join(prefix, 'out', '92-sifpack-conda-activate.sh');
    // The exact line the def's %post and the Dockerfile's RUN carry, with the host's python3 as the env's.
    await fs.mkdir(path.join(prefix, 'bin'));
    await fs.symlink('/usr/bin/python3', path.join(prefix, 'bin', 'python'));
    const line = captureActivationLine(prefix).replace(ACTIVATE_SCRIPT, out);
    const r = spawnSync('/bin/sh', ['-c', line], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const script = await fs.readFile(out, 'utf8').catch(() => undefined);
    await fs.rm(prefix, { recursive: true, force: true });
    return { script: script?.replaceAll(prefix, 'PREFIX'), stderr: r.stderr.replaceAll(prefix, 'PREFIX') };
  }

  it('static exports, a PATH prepend and a trap become plain export lines; quotes and $ survive', async () => {
    const { script } = await capture({
      'a-gdal.sh': 'trap "true" EXIT\nexport GDAL_DATA="$CONDA_PREFIX/share/gdal"\nexport _OLD_X="${X:-}"\n',
      'b-tool.sh': 'export PATH="$CONDA_PREFIX/libexec/tool:$PATH"\nexport ODD=\'a "b" $c `d` \\e\'\n',
    });
    expect(script).toBe(
      [
        '#!/bin/sh',
        '# Written by sifpack at build time: what the conda activation hooks of PREFIX export.',
        'export GDAL_DATA="PREFIX/share/gdal"',
        'export ODD="a \\"b\\" \\$c \\`d\\` \\\\e"',
        'export PATH="PREFIX/libexec/tool:""$PATH"',
        'export _OLD_X=""',
        '',
      ].join('\n'),
    );
  });

  it('a value computed from HOME at run time: nothing captured, the hooks stay sourced (and the build says why)', async () => {
    const { script, stderr } = await capture({ 'cache.sh': 'export TOOL_CACHE="$HOME/.cache/tool"\n' });
    expect(script).toBeUndefined();
    expect(stderr).toBe('sifpack: conda activation hooks sourced at run time (not captured: TOOL_CACHE depends on HOME or the working directory)\n');
  });

  it('the runtime script sources the hooks only when no capture exists', async () => {
    const lines = environmentLines(await recipe());
    expect(lines).toContain(`if [ ! -f ${ACTIVATE_SCRIPT} ] && [ -d /opt/env/etc/conda/activate.d ]; then`);
  });
});

describe('pip requirements from version control', () => {
  const GIT_PIP = ['mylib @ git+https://github.com/example/mylib@v1.2.0', 'requests==2.32.3'];

  it('finds git+, hg+, svn+ and bzr+ in name @ URL, -e URL and bare URL lines; not in plain names or https URLs', () => {
    expect(vcsSchemes(['mylib @ git+https://h/x', '-e hg+https://h/y#egg=y', 'svn+svn://h/z', 'x @ bzr+lp:x', 'gitpython==3.1', 'pkg @ https://h/p.whl', 'git-lfs'])).toEqual(['git', 'hg', 'svn', 'bzr']);
    expect(vcsSchemes(['gitpython==3.1.43', 'digit+1', '--index-url https://h/simple'])).toEqual([]);
  });

  it('a git+ line: conda-forge git is solved into a build-only prefix on PATH, then removed; golden def and Dockerfile', async () => {
    const r = await recipe(GIT_PIP);
    const def = renderDef(r, { version: '0.0.0', defName: 'x.def' }).text;
    const post = section(def, 'post');
    const order = ['export PATH=/opt/sifpack-git/bin:"$PATH"', '/bin/micromamba create -y -p /opt/sifpack-git -c conda-forge git', '/bin/micromamba create -y -p /opt/env', 'rm -rf /opt/sifpack-git', '/bin/micromamba clean -a -y'];
    const at = order.map((l) => post.indexOf(l));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
    expect(post).toContain("# git: the env's pip requirements install from git+ URLs and pip runs `git clone`;");
    await expectGolden('def/vcs-git.def', def);
    await expectGolden('def/vcs-git.Dockerfile', renderDockerfile(r, { version: '0.0.0' }).text);
  });

  it('a git+ line in the pip lock of a --lock build counts too', async () => {
    const preset = await loadPreset('micromamba', []);
    const lock = { source: 'env.lock', name: 'environment.lock', text: '@EXPLICIT\nhttps://conda.anaconda.org/conda-forge/noarch/pip-24.0-pyhd8ed1ab_0.conda\n' };
    const pipLock = { source: 'env.lock.pip.txt', name: 'environment.lock.pip.txt', text: 'mylib @ git+https://github.com/example/mylib@0123abc\n' };
    const r = buildRecipe({ preset, spec: spec(), source: { kind: 'env-file', envFile, lock, pipLock }, sifpackVersion: '0.0.0' });
    expect(r.install.steps.map((s) => s.join(' '))).toContain('/bin/micromamba create -y -p /opt/sifpack-git -c conda-forge git');
  });

  it('no VCS line: no git step, no PATH change', async () => {
    const r = await recipe(['requests==2.32.3']);
    expect(r.install.env.PATH).toBeUndefined();
    expect(r.install.steps.flat()).not.toContain('/opt/sifpack-git');
  });

  it('hg+, svn+, bzr+: a warning naming the file, the command pip runs and what to add', () => {
    const w = environmentWarnings({ ...spec(['x @ hg+https://h/x', 'y @ svn+https://h/y']) }, 'environment.yml');
    expect(w).toEqual([
      "environment.yml: a pip requirement installs from a hg+ URL, and pip then runs `hg`, which the base images lack: add it to the preset's os-packages (e.g. mercurial) or install from a released version",
      "environment.yml: a pip requirement installs from a svn+ URL, and pip then runs `svn`, which the base images lack: add it to the preset's os-packages (e.g. subversion) or install from a released version",
    ]);
  });
});
