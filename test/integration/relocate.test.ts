/**
 * --from-prefix images that work where the env does not exist (issue 10):
 * a prefix under a test user's $HOME and one under /tmp — both places
 * apptainer mounts over the image at run time — built through the real
 * Docker engine (SIF by sifpack's converter) and, for the $HOME one, by
 * `sifpack build --builder apptainer --bootstrap docker-daemon` with the real
 * apptainer (the def file's tarball in %files unpacked with tar in %post). Then the host prefix is
 * moved away and the real apptainer 1.4.5 runs the env's python, a console
 * script and `run script.py`, as root and as a non-root user; the unpacked
 * squashfs is searched for the old prefix string.
 *
 * The prefix is a double of a conda env (conda is not installable here) with
 * Debian's python3.11 from the shared base image: test/fixtures/real-prefix.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSif, requirePrimaryPartition } from '../../src/sif/reader.js';
import { sifpack } from '../e2e/cli.js';
import { pythonFromImage, writeRealPrefix } from '../fixtures/real-prefix.js';
import { service, tempDir } from '../helpers.js';

let dir: string;
let user: string;
let home: string;
let python: string;
let dockerEnv: NodeJS.ProcessEnv;

const SCRIPT = "import sys, mod\nprint('script ok', sys.argv[1:], mod.where())\n";

beforeAll(async () => {
  dockerEnv = { DOCKER_HOST: service('DOCKER_HOST'), SIFPACK_DOCKER_NETWORK: 'none' };
  service('SIFPACK_TEST_APPTAINER');
  dir = await tempDir('sifpack-reloc-');
  await fs.chmod(dir, 0o755); // the non-root user reads the images and scripts here
  user = `sfp10${randomBytes(3).toString('hex')}`;
  home = `/home/${user}`;
  execFileSync('useradd', ['-m', '-d', home, '-s', '/bin/sh', user]);
  python = await pythonFromImage(path.join(dir, 'python-from-image'), service('SIFPACK_TEST_BASE_IMAGE'), dockerEnv);
}, 120_000);

afterAll(async () => {
  if (user) spawnSync('userdel', ['-r', '-f', user]);
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** The real apptainer, as root or as the test user (user namespaces; no /dev/fuse for them here, so APPTAINER_UNSQUASH=1). */
function apptainer(who: 'root' | 'user', args: string[], cwd: string): { code: number; out: string; err: string } {
  const bin = service('SIFPACK_TEST_APPTAINER');
  const r =
    who === 'root'
      ? spawnSync(bin, args, { cwd, env: { PATH: '/usr/bin:/bin', HOME: '/root' } })
      : spawnSync('runuser', ['-u', user, '--', 'env', '-i', `HOME=${home}`, `USER=${user}`, 'PATH=/usr/bin:/bin', 'APPTAINER_UNSQUASH=1', bin, ...args], { cwd });
  return { code: r.status ?? -1, out: r.stdout.toString(), err: r.stderr.toString() };
}

async function unsquash(sif: string, into: string): Promise<string> {
  const img = await readSif(sif);
  execFileSync('unsquashfs', ['-q', '-n', '-o', String(requirePrimaryPartition(img).descriptor.offset), '-d', into, sif]);
  return into;
}

const cases = [
  { where: "under a user's $HOME", prefix: () => path.join(home, 'miniforge3', 'envs', 'analysis'), defToo: true },
  { where: 'under /tmp', prefix: () => path.join(dir, 'envs', 'analysis'), defToo: false },
];

describe.each(cases)('a --from-prefix env $where, host prefix moved away, real apptainer', ({ prefix: prefixOf, defToo }) => {
  let prefix: string;
  let work: string;
  const images: { builder: string; sif: string }[] = [];

  beforeAll(async () => {
    prefix = prefixOf();
    work = path.join(dir, `work-${defToo ? 'home' : 'tmp'}`);
    await fs.mkdir(work, { recursive: true });
    await fs.writeFile(path.join(work, 'script.py'), SCRIPT);
    await writeRealPrefix(prefix, python);
    // The fixture's python really is the prefix's: it imports mod from there on the host.
    expect(execFileSync(path.join(prefix, 'bin', 'python'), ['-c', 'import sys, mod; print(sys.prefix, mod.where())']).toString()).toBe(`${prefix} ${prefix}/share/mod\n`);

    const docker = await sifpack(['build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '--tag', `issue10-reloc:${defToo ? 'home' : 'tmp'}`, '-o', 'docker.sif'], {
      cwd: work,
      env: { ...dockerEnv, HOME: home },
    });
    // Text: the script's shebang, mod.conf, the activation hook, the .pth, the history; binary: python's RPATH, data.bin;
    // .pyc: mod's and the stdlib's the host run recompiled (cp does not keep mtimes).
    expect(docker.stderr).toContain(`relocated ${prefix} -> /opt/env: 5 text, 2 binary (NUL-padded), `);
    expect(docker.stderr).toMatch(/ \d+ \.pyc file\(s\), 1 symlink\(s\), 1 pip RECORD\(s\) rewritten/);
    expect(docker.code, docker.stderr).toBe(0);
    images.push({ builder: 'docker', sif: path.join(work, 'docker.sif') });

    if (defToo) {
      // The definition-file builder, through sifpack itself: the real apptainer on PATH, the base image from the
      // local engine (Docker Hub is out of reach), the env shipped as a relocated tarball in %files.
      const b = await sifpack(['build', '--from-prefix', prefix, '--builder', 'apptainer', '--bootstrap', 'docker-daemon', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '--tmpdir', dir, '-o', 'apptainer.sif'], {
        cwd: work,
        env: { DOCKER_HOST: service('DOCKER_HOST'), HOME: home, PATH: `${path.dirname(service('SIFPACK_TEST_APPTAINER'))}:${process.env.PATH}` },
      });
      expect(b.code, b.stderr).toBe(0);
      expect(b.stderr).toContain('builder: apptainer 1.4.5 (asked for)');
      expect(b.stderr).toContain(`relocated ${prefix} -> /opt/env: 5 text, 2 binary (NUL-padded), `);
      expect(b.stderr).toMatch(/INFO: +Running testscript/);
      images.push({ builder: 'apptainer', sif: path.join(work, 'apptainer.sif') });
    }
    // The other cluster: the env does not exist there.
    await fs.rename(prefix, `${prefix}.moved`);
    for (const i of images) await fs.chmod(i.sif, 0o644);
  }, 600_000);

  // One container per check keeps the non-root runs affordable: each unsquashes the whole image (APPTAINER_UNSQUASH=1).
  const CHECKS = [
    'python -c "import sys, mod; print(sys.prefix, mod.where(), mod.main.__code__.co_filename)"',
    'mod-hello',
    'mod-hello-hard',
    'python3 -c "import os, sys; print(os.path.realpath(sys.executable))"',
  ].join(' && ');
  const EXPECTED = ['/opt/env /opt/env/share/mod /opt/env/lib/python3.11/site-packages/mod/__init__.py', 'mod-hello from /opt/env data /opt/env/share/mod', 'mod-hello from /opt/env data /opt/env/share/mod', '/opt/env/bin/python3.11', ''].join('\n');

  for (const who of ['root', 'user'] as const) {
    it(`as ${who}: python imports mod from /opt/env, the console script and its hard link run, run script.py works`, () => {
      for (const { builder, sif } of images) {
        const ex = apptainer(who, ['exec', sif, 'sh', '-c', CHECKS], work);
        expect(ex, `${builder}: ${ex.err}`).toMatchObject({ code: 0, out: EXPECTED });
        const run = apptainer(who, ['run', sif, 'script.py', 'a b'], work);
        expect(run, `${builder}: ${run.err}`).toMatchObject({ code: 0, out: "script ok ['a b'] /opt/env/share/mod\n" });
      }
    }, 600_000);
  }

  it('the unpacked squashfs: no file holds the old prefix (bar the provenance label), links, modes, owners and RECORD hashes right', async () => {
    for (const { builder, sif } of images) {
      const root = await unsquash(sif, path.join(work, `rootfs-${builder}`));
      const hits = execFileSync('sh', ['-c', 'cd "$2" && grep -rlF "$1" . || true', 'sh', prefix, root]).toString().trim().split('\n').filter(Boolean).sort();
      // sifpack.prefix-path records where the env came from; the def file copied into the image carries the same
      // label, and its %help (runscript.help) says which installed prefix the env was copied from. Provenance only.
      // Docker-built images carry the def's %help as runscript.help too (main, dcccfa1), with the same provenance line.
      expect(hits, builder).toEqual(builder === 'apptainer' ? ['./.singularity.d/Singularity', './.singularity.d/labels.json', './.singularity.d/runscript.help'] : ['./.singularity.d/labels.json', './.singularity.d/runscript.help']);
      const env = path.join(root, 'opt', 'env');
      expect(await fs.readlink(path.join(env, 'bin', 'python3')), builder).toBe('/opt/env/bin/python3.11');
      expect(await fs.readlink(path.join(env, 'bin', 'python')), builder).toBe('python3.11');
      const hello = await fs.stat(path.join(env, 'bin', 'mod-hello'));
      expect(hello.nlink, builder).toBe(2);
      expect((await fs.stat(path.join(env, 'bin', 'mod-hello-hard'))).ino, builder).toBe(hello.ino);
      // a+rX everywhere, root's: find prints what is not.
      const bad = execFileSync('find', [env, '(', '!', '-type', 'l', '(', '!', '-perm', '-a+r', '-o', '!', '-uid', '0', '-o', '-type', 'd', '!', '-perm', '-a+x', ')', ')', '-print']).toString();
      expect(bad, builder).toBe('');
      const script = await fs.readFile(path.join(env, 'bin', 'mod-hello'));
      expect(script.toString().split('\n')[0]).toBe('#!/opt/env/bin/python3.11');
      const record = await fs.readFile(path.join(env, 'lib', 'python3.11', 'site-packages', 'mod-1.0.dist-info', 'RECORD'), 'utf8');
      expect(record, builder).toContain(`../../../bin/mod-hello,sha256=${createHash('sha256').update(script).digest('base64url')},${script.length}\n`);
      // conda-meta read the way `conda list -p` reads it: records parse, history names the new prefix.
      for (const f of (await fs.readdir(path.join(env, 'conda-meta'))).filter((n) => n.endsWith('.json'))) JSON.parse(await fs.readFile(path.join(env, 'conda-meta', f), 'utf8'));
      expect(await fs.readFile(path.join(env, 'conda-meta', 'history'), 'utf8'), builder).toContain('# cmd: /opt/conda/bin/conda create -p /opt/env python mod-data');
      expect(await fs.readFile(path.join(env, 'etc', 'mod.conf'), 'utf8')).toBe('home = /opt/env/share/mod\n');
      await fs.rm(root, { recursive: true, force: true });
    }
  }, 300_000);

  if (defToo) {
    it('the definition-file image runs the activation hooks with the new prefix', () => {
      const r = apptainer('root', ['exec', path.join(work, 'apptainer.sif'), 'sh', '-c', 'echo "$MOD_HOME"'], work);
      expect(r, r.err).toMatchObject({ code: 0, out: '/opt/env/share/mod\n' });
    });
  }
});

describe('refusals before anything is copied (CLI, exit 2)', () => {
  it('--keep-prefix-path of an env under $HOME: exit 2 naming the mounts, nothing written', async () => {
    const p = path.join(home, 'envs', 'kept');
    await fs.mkdir(path.join(p, 'conda-meta'), { recursive: true });
    const w = path.join(dir, 'keep');
    await fs.mkdir(w);
    const r = await sifpack(['build', '--from-prefix', p, '--keep-prefix-path', '--builder', 'docker', '-o', 'x.sif'], { cwd: w, env: { ...dockerEnv, HOME: home } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--keep-prefix-path: ${p} is under /home, $HOME (${home}), which apptainer mounts over the image by default at run time`);
    expect(await fs.readdir(w)).toEqual([]);
  });

  it('a dangling symlink and an editable install: each named, exit 2; --allow-local lists them and goes on', async () => {
    const p = path.join(dir, 'bad', 'envs', 'bad');
    const sp = path.join(p, 'lib', 'python3.11', 'site-packages', 'ed-0.1.dist-info');
    await fs.mkdir(sp, { recursive: true });
    await fs.mkdir(path.join(p, 'conda-meta'), { recursive: true });
    await fs.mkdir(path.join(p, 'bin'));
    await fs.writeFile(path.join(sp, 'METADATA'), 'Metadata-Version: 2.1\nName: ed\nVersion: 0.1\n');
    await fs.writeFile(path.join(sp, 'INSTALLER'), 'pip\n');
    await fs.writeFile(path.join(sp, 'direct_url.json'), JSON.stringify({ url: 'file:///home/someone/src/ed', dir_info: { editable: true } }));
    await fs.symlink('../nowhere', path.join(p, 'bin', 'broken'));
    const w = path.join(dir, 'bad', 'work');
    await fs.mkdir(w);
    const r = await sifpack(['def', '--from-prefix', p, '-o', 'bad.def'], { cwd: w });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${sp}: pip package ed 0.1 is an editable install of /home/someone/src/ed, which the image will not have`);
    expect(r.stderr).toContain(`${path.join(p, 'bin', 'broken')}: dangling symlink to ../nowhere`);
    expect(await fs.readdir(w)).toEqual([]);
    const ok = await sifpack(['def', '--from-prefix', p, '--allow-local', '-o', 'bad.def'], { cwd: w });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain(`left out of the image (--allow-local): ${path.join(p, 'bin', 'broken')}: dangling symlink`);
    const list = execFileSync('tar', ['-tf', path.join(w, 'bad-env.tar')]).toString();
    expect(list).not.toContain('broken');
    expect(list).not.toContain('ed-0.1.dist-info');
  });
});
