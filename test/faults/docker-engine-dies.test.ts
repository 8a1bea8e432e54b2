/**
 * A Docker engine that dies mid-build and mid-export: a private dockerd
 * (private-dockerd.ts, never the shared one) is SIGKILLed while `sifpack
 * build --builder docker` sends it the build, and while `sifpack convert`
 * streams an export out of it. Either way: exit 1, a message naming the
 * Docker engine and what failed, no SIF and no temp file; and once the engine
 * is back, the next run succeeds. (A registry that drops the connection, push
 * and pull: test/integration/push-pull-faults.test.ts.)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, sifpack } from '../e2e/cli.js';
import { service, tempDir } from '../helpers.js';
import { PrivateDockerd } from './private-dockerd.js';

const MiB = 1024 * 1024;
let dir: string;
let engine: PrivateDockerd;
let env: NodeJS.ProcessEnv;

/** Runs the CLI; `trigger` decides when the engine dies (given the stderr so far). */
function runAndKill(args: string[], cwd: string, trigger: (stderr: string) => Promise<boolean> | boolean): Promise<{ code: number; stderr: string; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [CLI, ...args], { cwd, env: { PATH: process.env.PATH, HOME: dir, ...env } });
    let stderr = '';
    let killed = false;
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout!.resume();
    const poll = setInterval(() => {
      void (async () => {
        if (killed || !(await trigger(stderr))) return;
        killed = true;
        await engine.kill();
      })();
    }, 50);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ code: code ?? -1, stderr, killed });
    });
  });
}

beforeAll(async () => {
  dir = await tempDir('sifpack-engine-dies-');
  engine = new PrivateDockerd(path.join(dir, 'engine'));
  await engine.start();
  engine.loadFrom(service('DOCKER_HOST'), [service('SIFPACK_TEST_BUSYBOX_IMAGE'), service('SIFPACK_TEST_BASE_IMAGE')]);
  env = { DOCKER_HOST: engine.host, SIFPACK_DOCKER_NETWORK: 'none' };
}, 300_000);
afterAll(async () => {
  await engine?.stop();
  // Nothing of the private engine may outlive the test.
  const left = execFileSync('ps', ['-eo', 'pid,args']).toString().split('\n').filter((l) => l.includes(engine.dir));
  if (left.length) throw new Error(`processes of the private engine still run:\n${left.join('\n')}`);
  await fs.rm(dir, { recursive: true, force: true });
});

describe('the Docker engine dies', { timeout: 300_000 }, () => {
  it('mid-build: exit 1 naming the Docker engine and the build, no SIF, no temp file; with the engine back the build succeeds', async () => {
    // A 200 MiB build context, so the engine is still receiving it when it dies.
    const prefix = path.join(dir, 'envs', 'big');
    await fs.mkdir(path.join(prefix, 'conda-meta'), { recursive: true });
    await fs.mkdir(path.join(prefix, 'lib'), { recursive: true });
    await fs.writeFile(path.join(prefix, 'conda-meta', 'blob-1.0-0.json'), JSON.stringify({ name: 'blob', version: '1.0', build: '0', subdir: 'noarch', depends: [] }));
    for (let i = 0; i < 20; i++) await fs.writeFile(path.join(prefix, 'lib', `blob${i}.bin`), randomBytes(10 * MiB));
    const out = path.join(dir, 'build-out');
    await fs.mkdir(out);
    const args = ['build', '--from-prefix', prefix, '--builder', 'docker', '--base-image', service('SIFPACK_TEST_BUSYBOX_IMAGE'), '--tag', 'issue17-dies/big:1', '-o', 'big.sif'];
    let seenAt = 0;
    const r = await runAndKill(args, out, (stderr) => {
      if (!stderr.includes('with the Docker engine')) return false;
      seenAt ||= Date.now();
      return Date.now() - seenAt > 300;
    });
    expect(r.killed).toBe(true);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/sifpack: error: .*Docker engine.*build/i);
    console.log(`engine killed mid-build: ${r.stderr.split('\n').filter((l) => /error|hint/.test(l)).join(' | ')}`);
    expect((await fs.readdir(out)).filter((f) => f !== '.sifpack')).toEqual([]);
    expect((await fs.readdir(out, { recursive: true })).filter((f) => f.includes('.tmp'))).toEqual([]);

    await engine.stop();
    await engine.start();
    const again = await sifpack(args, { cwd: out, env });
    expect(again.code, again.stderr).toBe(0);
    expect(engine.docker(['images', '-q', 'issue17-dies/big:1']).trim()).not.toBe('');
  });

  it('mid-export (convert): exit 1 naming the Docker engine and the export, no SIF, no temp file; with the engine back convert succeeds', async () => {
    const out = path.join(dir, 'convert-out');
    await fs.mkdir(out);
    const tempRe = /^\.base\.sif\.\d+-[0-9a-f]{12}\.tmp\.sif$/;
    const r = await runAndKill(['convert', service('SIFPACK_TEST_BASE_IMAGE'), '-o', 'base.sif'], out, async () => {
      for (const n of (await fs.readdir(out)).filter((f) => tempRe.test(f))) if ((await fs.stat(path.join(out, n)).catch(() => ({ size: 0 }))).size > 1 * MiB) return true;
      return false;
    });
    expect(r.killed).toBe(true);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`sifpack: error: Docker engine: export ${service('SIFPACK_TEST_BASE_IMAGE')} failed: the engine broke off the connection`);
    console.log(`engine killed mid-export: ${r.stderr.split('\n').filter((l) => /error|hint/.test(l)).join(' | ')}`);
    expect(await fs.readdir(out)).toEqual([]);

    await engine.stop();
    await engine.start();
    const again = await sifpack(['convert', service('SIFPACK_TEST_BUSYBOX_IMAGE'), '-o', 'base.sif'], { cwd: out, env });
    expect(again.code, again.stderr).toBe(0);
    expect(await fs.readdir(out)).toEqual(['base.sif']);
  });
});
