/**
 * Faults below Ctrl-C: a disk that fills up, and SIGKILL (no chance to clean
 * up). Disk full: export -o, def -o and convert write into a small tmpfs the
 * test mounts (CI runs as root) and fills; each ends with exit 1 and "no space
 * left on <dir>", leaves no partial output and no temp file, and a previous
 * good output at the target stays untouched. SIGKILL during convert: the next
 * run of the same command succeeds and removes what the killed run left (its
 * temp SIF, named with its PID, and its export container in the engine).
 */
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, sifpack } from '../e2e/cli.js';
import { ROOT, service, tempDir } from '../helpers.js';

let dir: string;
let small: string;
let mounted = false;
const PREFIX = path.join(ROOT, 'examples', 'pandas-analysis', 'envs', 'analysis');
const ENV_FILE = path.join(ROOT, 'examples', 'pandas-analysis', 'environment.yml');

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
  ];
  for (const [what, args] of cases) {
    it(`${what}: exit 1, "no space left on <dir>", nothing partial, the previous output untouched`, async () => {
      await fs.rm(path.join(small, 'filler'), { force: true });
      for (const n of await leftovers()) await fs.rm(path.join(small, n), { force: true });
      const out = path.join(small, what.startsWith('convert') ? 'image.sif' : 'out.txt');
      await fs.writeFile(out, 'the previous good output\n');
      await fill();
      const r = await sifpack(args(out), { env: { DOCKER_HOST: service('DOCKER_HOST') } });
      expect(r.stderr).not.toMatch(/internal error/);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`no space left on ${small}`);
      expect(await fs.readFile(out, 'utf8')).toBe('the previous good output\n');
      expect(await leftovers()).toEqual([path.basename(out)]);
    }, 120_000);
  }
});

describe('SIGKILL during convert', () => {
  it('the next convert succeeds and removes the killed run\'s temp SIF and export container', async () => {
    const docker = new Docker();
    const out = path.join(dir, 'killed.sif');
    const child = spawn(process.execPath, [CLI, 'convert', service('SIFPACK_TEST_BASE_IMAGE'), '-o', out], { env: { ...process.env, DOCKER_HOST: service('DOCKER_HOST') }, stdio: 'ignore' });
    const pid = child.pid!;
    const exited = new Promise((res) => child.on('exit', res));
    // Wait until the squashfs is being written into the temp SIF, then kill -9.
    const tempRe = new RegExp(`^\\.killed\\.sif\\.${pid}-[0-9a-f]{12}\\.tmp\\.sif$`);
    const end = Date.now() + 60_000;
    for (;;) {
      const temps = (await fs.readdir(dir)).filter((n) => tempRe.test(n));
      if (temps.length && (await fs.stat(path.join(dir, temps[0]!))).size > 1 << 20) break;
      if (Date.now() > end) throw new Error('convert never started writing its temp SIF');
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    await exited;
    // mksquashfs, its child, may outlive it for a moment; its writes go to the temp file only.
    try {
      execFileSync('pkill', ['-KILL', '-f', `mksquashfs - ${dir}`], { stdio: 'ignore' });
    } catch {
      /* already gone: pkill exits 1 when nothing matched */
    }
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
