/**
 * Faults below Ctrl-C: a disk that fills up, and SIGKILL (no chance to clean
 * up). Disk full: export -o, def -o, convert, build (the Docker builder; its
 * conversion step writes the SIF) and pull (the real registry; through the
 * cache, without it, and with the cache itself on the full disk) write into a
 * small tmpfs the test mounts (CI runs as root) and fills; each ends with
 * exit 1 and "no space left on <dir>", leaves no partial output and no temp
 * file, and a previous good output at the target stays untouched. SIGKILL
 * during convert, build and pull: the next run of the same command succeeds
 * and removes what the killed run left (its temp SIF or download, named with
 * its PID, and its export container in the engine).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, sifpack } from '../e2e/cli.js';
import { makeSif } from '../fixtures/sif-maker.js';
import { ROOT, service, tempDir } from '../helpers.js';

let dir: string;
let small: string;
let mounted = false;
const PREFIX = path.join(ROOT, 'examples', 'pandas-analysis', 'envs', 'analysis');
const ENV_FILE = path.join(ROOT, 'examples', 'pandas-analysis', 'environment.yml');
const RUN = randomBytes(3).toString('hex');
const MiB = 1024 * 1024;
/** A small SIF pushed to the real registry for the pull cases. */
let smallRef: string;
let env: NodeJS.ProcessEnv;

/** A tiny conda-like prefix for `build --from-prefix` (one record, one script). */
async function tinyPrefix(p: string): Promise<string> {
  await fs.mkdir(path.join(p, 'conda-meta'), { recursive: true });
  await fs.mkdir(path.join(p, 'bin'), { recursive: true });
  await fs.writeFile(path.join(p, 'conda-meta', 'mytool-1.0-0.json'), JSON.stringify({ name: 'mytool', version: '1.0', build: '0', channel: 'https://conda.anaconda.org/conda-forge/noarch', subdir: 'noarch', depends: [] }));
  await fs.writeFile(path.join(p, 'bin', 'mytool'), '#!/bin/sh\necho mytool\n', { mode: 0o755 });
  return p;
}

/** Every process whose parent is `pid` (read from /proc/N/stat), so a test can kill the children of what it killed. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const n of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(n));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** SIGKILL a sifpack process and the children it started (mksquashfs would write on into the temp file otherwise). */
async function killHard(child: ChildProcess): Promise<void> {
  const exited = new Promise((res) => child.on('exit', res));
  const kids = childrenOf(child.pid!);
  child.kill('SIGKILL');
  for (const k of kids) {
    try {
      process.kill(k, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await exited;
  // A killed child's writes end with it; wait until none of them is left.
  for (const k of kids) while (await fs.access(`/proc/${k}`).then(() => true, () => false)) await new Promise((r) => setTimeout(r, 50));
}

/** Waits until a file in `d` matching `re` is larger than `bytes`. */
async function waitForTemp(d: string, re: RegExp, bytes: number, what: string): Promise<void> {
  const end = Date.now() + 120_000;
  for (;;) {
    for (const n of (await fs.readdir(d).catch(() => [] as string[])).filter((f) => re.test(f))) {
      if ((await fs.stat(path.join(d, n)).catch(() => ({ size: 0 }))).size > bytes) return;
    }
    if (Date.now() > end) throw new Error(`${what} never started writing its temp file in ${d}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function fill(): Promise<void> {
  // Fill the tmpfs to the last byte; creating files still works (inodes), writing data does not.
  await fs.rm(path.join(small, 'filler'), { force: true });
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${path.join(small, 'filler')}`, 'bs=64k'], { stdio: 'ignore' });
  } catch {
    /* dd ends with "No space left on device": that is the point */
  }
}

async function leftovers(): Promise<string[]> {
  return (await fs.readdir(small)).filter((n) => n !== 'filler' && n !== 'good.txt').sort();
}

beforeAll(async () => {
  dir = await tempDir('sifpack-faults-');
  small = path.join(dir, 'small');
  await fs.mkdir(small);
  if (process.getuid?.() !== 0) throw new Error('the disk-full tests mount a tmpfs: run them as root (CI does)');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
  mounted = true;
  env = { DOCKER_HOST: service('DOCKER_HOST'), SIFPACK_DOCKER_NETWORK: 'none', XDG_CACHE_HOME: path.join(dir, 'cache') };
  await tinyPrefix(path.join(dir, 'envs', 'tiny'));
  await makeSif(path.join(dir, 'small-push.sif'), 2 * MiB);
  smallRef = `oras://${service('SIFPACK_TEST_REGISTRY')}/issue17-faults-${RUN}/small:1`;
  const push = await sifpack(['push', path.join(dir, 'small-push.sif'), smallRef], { cwd: dir, env });
  if (push.code !== 0) throw new Error(`push for the pull cases failed: ${push.stderr}`);
});
afterAll(async () => {
  if (mounted) execFileSync('umount', [small]);
  await fs.rm(dir, { recursive: true, force: true });
});

describe('disk full', () => {
  const cases: [string, (out: string) => string[]][] = [
    ['export -o', (out) => ['export', '-p', PREFIX, '-o', out, '--force']],
    ['def -o', (out) => ['def', ENV_FILE, '-o', out, '--force']],
    ['convert', (out) => ['convert', service('SIFPACK_TEST_BUSYBOX_IMAGE'), '-o', out, '--force']],
    ['build --builder docker', (out) => ['build', '--from-prefix', path.join(dir, 'envs', 'tiny'), '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BUSYBOX_IMAGE'), '--tag', `issue17-faults/tiny:${RUN}`, '-o', out, '--force']],
    // The cache is on the big disk: the download lands there, the copy to the full one fails.
    ['pull (through the cache)', (out) => ['pull', smallRef, '-o', out, '--force']],
    ['pull --no-cache', (out) => ['pull', smallRef, '-o', out, '--force', '--no-cache']],
  ];
  for (const [what, args] of cases) {
    it(`${what}: exit 1, "no space left on <dir>", nothing partial, the previous output untouched`, async () => {
      await fs.rm(path.join(small, 'filler'), { force: true });
      for (const n of await leftovers()) await fs.rm(path.join(small, n), { force: true });
      const out = path.join(small, /^(convert|build|pull)/.test(what) ? 'image.sif' : 'out.txt');
      await fs.writeFile(out, 'the previous good output\n');
      await fill();
      const r = await sifpack(args(out), { cwd: dir, env });
      expect(r.stderr).not.toMatch(/internal error/);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`no space left on ${small}`);
      expect(await fs.readFile(out, 'utf8')).toBe('the previous good output\n');
      expect(await leftovers()).toEqual([path.basename(out)]);
    }, 180_000);
  }

  it('pull with the cache itself on the full disk: exit 1 naming the cache directory, no temp left there, no output', async () => {
    await fs.rm(path.join(small, 'filler'), { force: true });
    for (const n of await leftovers()) await fs.rm(path.join(small, n), { force: true, recursive: true });
    await fs.mkdir(path.join(small, 'cache'));
    await fill();
    const out = path.join(dir, 'cache-full.sif');
    const r = await sifpack(['pull', smallRef, '-o', out], { cwd: dir, env: { ...env, XDG_CACHE_HOME: path.join(small, 'cache') } });
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`no space left on ${path.join(small, 'cache', 'sifpack', 'blobs', 'sha256')}`);
    await expect(fs.access(out)).rejects.toThrow();
    const cached = await fs.readdir(path.join(small, 'cache', 'sifpack', 'blobs', 'sha256')).catch(() => [] as string[]);
    expect(cached).toEqual([]);
    await fs.rm(path.join(small, 'cache'), { recursive: true, force: true });
  }, 120_000);
});

describe('SIGKILL during convert', () => {
  it('the next convert succeeds and removes the killed run\'s temp SIF and export container', async () => {
    const docker = new Docker();
    const out = path.join(dir, 'killed.sif');
    const child = spawn(process.execPath, [CLI, 'convert', service('SIFPACK_TEST_BASE_IMAGE'), '-o', out], { env: { ...process.env, DOCKER_HOST: service('DOCKER_HOST') }, stdio: 'ignore' });
    const pid = child.pid!;
    // Wait until the squashfs is being written into the temp SIF, then kill -9.
    const tempRe = new RegExp(`^\\.killed\\.sif\\.${pid}-[0-9a-f]{12}\\.tmp\\.sif$`);
    const end = Date.now() + 60_000;
    for (;;) {
      const temps = (await fs.readdir(dir)).filter((n) => tempRe.test(n));
      if (temps.length && (await fs.stat(path.join(dir, temps[0]!))).size > 1 << 20) break;
      if (Date.now() > end) throw new Error('convert never started writing its temp SIF');
      await new Promise((r) => setTimeout(r, 100));
    }
    await killHard(child); // and mksquashfs, its child, by PID
    const debris = (await fs.readdir(dir)).filter((n) => tempRe.test(n));
    expect(debris).toHaveLength(1);
    const stale = await docker.listContainers({ all: true, filters: { label: [`sifpack.pid=${pid}`] } });
    expect(stale.length).toBe(1);
    await expect(fs.access(out)).rejects.toThrow();

    const r = await sifpack(['convert', service('SIFPACK_TEST_BUSYBOX_IMAGE'), '-o', out], { env: { DOCKER_HOST: service('DOCKER_HOST') } });
    expect(r.code, r.stderr).toBe(0);
    expect((await fs.readdir(dir)).filter((n) => n.includes('.tmp'))).toEqual([]);
    expect(await docker.listContainers({ all: true, filters: { label: [`sifpack.pid=${pid}`] } })).toEqual([]);
  }, 180_000);
});

describe('SIGKILL during build and pull', () => {
  it('build --builder docker killed while its conversion writes the SIF: the next build succeeds and sweeps the temp SIF and the export container', async () => {
    const docker = new Docker();
    const prefix = await tinyPrefix(path.join(dir, 'envs', 'killed'));
    const out = path.join(dir, 'killed-build.sif');
    // The Debian base image: big enough that mksquashfs is still writing when the kill comes.
    const args = ['build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BASE_IMAGE'), '--tag', `issue17-faults/killed:${RUN}`, '-o', out];
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, ...env }, stdio: 'ignore' });
    const pid = child.pid!;
    const tempRe = new RegExp(`^\\.killed-build\\.sif\\.${pid}-[0-9a-f]{12}\\.tmp\\.sif$`);
    await waitForTemp(dir, tempRe, 1 * MiB, 'build');
    await killHard(child);
    expect((await fs.readdir(dir)).filter((n) => tempRe.test(n))).toHaveLength(1);
    expect(await docker.listContainers({ all: true, filters: { label: [`sifpack.pid=${pid}`] } })).toHaveLength(1);
    await expect(fs.access(out)).rejects.toThrow();

    const r = await sifpack(args, { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect((await fs.readdir(dir)).filter((n) => n.includes('.tmp'))).toEqual([]);
    expect(await docker.listContainers({ all: true, filters: { label: [`sifpack.pid=${pid}`] } })).toEqual([]);
    const inspect = await sifpack(['inspect', out, '--json'], { cwd: dir });
    expect(inspect.code, inspect.stderr).toBe(0);
    execFileSync('docker', ['rmi', '-f', `issue17-faults/killed:${RUN}`, `issue17-faults/tiny:${RUN}`], { env: { ...process.env, DOCKER_HOST: service('DOCKER_HOST') }, stdio: 'ignore' });
  }, 300_000);

  it('pull killed mid-download (into the cache, and with --no-cache beside the target): the next pull succeeds and sweeps the partial download', async () => {
    const big = await makeSif(path.join(dir, 'big-push.sif'), 200 * MiB);
    const ref = `oras://${service('SIFPACK_TEST_REGISTRY')}/issue17-faults-${RUN}/big:1`;
    const push = await sifpack(['push', big, ref], { cwd: dir, env });
    expect(push.code, push.stderr).toBe(0);
    const cacheEnv = { ...env, XDG_CACHE_HOME: path.join(dir, 'cache-kill') };
    const blobs = path.join(dir, 'cache-kill', 'sifpack', 'blobs', 'sha256');
    for (const [how, extra, tempDirOf, tempName] of [
      ['--no-cache', ['--no-cache'], dir, 'killed-pull\\.sif'],
      ['through the cache', [], blobs, '[0-9a-f]{64}'],
    ] as const) {
      const out = path.join(dir, 'killed-pull.sif');
      await fs.rm(out, { force: true });
      const args = ['pull', ref, '-o', out, ...extra];
      const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, ...cacheEnv }, stdio: 'ignore' });
      const pid = child.pid!;
      const tempRe = new RegExp(`^\\.${tempName}\\.${pid}-[0-9a-f]{12}\\.tmp$`);
      await waitForTemp(tempDirOf, tempRe, 1 * MiB, `pull ${how}`);
      await killHard(child);
      expect((await fs.readdir(tempDirOf)).filter((n) => tempRe.test(n)), how).toHaveLength(1);
      await expect(fs.access(out)).rejects.toThrow();

      const r = await sifpack(args, { cwd: dir, env: cacheEnv });
      expect(r.code, `${how}: ${r.stderr}`).toBe(0);
      execFileSync('cmp', [big, out]);
      expect((await fs.readdir(tempDirOf)).filter((n) => n.includes('.tmp')), how).toEqual([]);
      expect((await fs.readdir(dir)).filter((n) => n.includes('.tmp')), how).toEqual([]);
    }
  }, 300_000);
});
