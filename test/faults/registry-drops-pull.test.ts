/**
 * A registry that drops the connection while `sifpack pull` downloads (the
 * push side: test/integration/push-pull-faults.test.ts). A private
 * docker-registry (registry-harness.ts, never the shared one) is SIGKILLed
 * once the download is under way, through the cache and with --no-cache:
 * exit 1, "connection lost after N of M bytes", no output file, no temp file
 * beside it or in the cache, nothing cached; with the registry back, the same
 * pull succeeds byte for byte.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, sifpack } from '../e2e/cli.js';
import { makeSif } from '../fixtures/sif-maker.js';
import { tempDir } from '../helpers.js';
import { PrivateRegistry } from '../integration/registry-harness.js';

const MiB = 1024 * 1024;
let dir: string;
let reg: PrivateRegistry;
let sif: string;
let ref: string;

beforeAll(async () => {
  dir = await tempDir('sifpack-registry-drops-');
  reg = new PrivateRegistry(path.join(dir, 'registry'));
  await reg.start();
  sif = await makeSif(path.join(dir, 'big.sif'), 200 * MiB);
  ref = `oras://${reg.host}/issue17/drops:1`;
  const push = await sifpack(['push', sif, ref], { cwd: dir, env: { HOME: dir, XDG_CACHE_HOME: path.join(dir, 'push-cache') } });
  if (push.code !== 0) throw new Error(`push failed: ${push.stderr}`);
}, 300_000);
afterAll(async () => {
  await reg?.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

/** Files in `d` (recursively) whose name says they are temporary. */
async function temps(d: string): Promise<string[]> {
  return ((await fs.readdir(d, { recursive: true }).catch(() => [])) as string[]).filter((n) => n.includes('.tmp'));
}

describe('the registry drops the connection mid-pull', { timeout: 300_000 }, () => {
  for (const [how, extra] of [['through the cache', []], ['--no-cache', ['--no-cache']]] as const) {
    it(`${how}: exit 1 "connection lost after N of M bytes", nothing written; the next pull succeeds`, async () => {
      const out = path.join(dir, 'out');
      const cache = path.join(dir, `cache-${extra.length}`);
      await fs.rm(out, { recursive: true, force: true });
      await fs.mkdir(out);
      const env = { PATH: process.env.PATH, HOME: dir, XDG_CACHE_HOME: cache };
      const child: ChildProcess = spawn(process.execPath, [CLI, 'pull', ref, '-o', 'pulled.sif', ...extra], { cwd: out, env });
      let stderr = '';
      child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      child.stdout!.resume();
      const closed = new Promise<number>((r) => child.on('close', (code) => r(code ?? -1)));
      // Kill the registry once more than 1 MiB has arrived in a temp file (beside the target or in the cache).
      const end = Date.now() + 120_000;
      for (;;) {
        const files = [...(await temps(out)).map((n) => path.join(out, n)), ...(await temps(cache)).map((n) => path.join(cache, n))];
        const sizes = await Promise.all(files.map((f) => fs.stat(f).then((s) => s.size, () => 0)));
        if (sizes.some((s) => s > 1 * MiB)) break;
        if (Date.now() > end || child.exitCode !== null) throw new Error(`the pull never got under way: ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await reg.kill();
      const code = await closed;
      await reg.start();
      expect(stderr).not.toMatch(/internal error/);
      expect(code, stderr).toBe(1);
      expect(stderr).toMatch(new RegExp(`sifpack: error: (oras://)?${reg.host}/issue17/drops:1: connection lost after \\d+ of ${(await fs.stat(sif)).size} bytes`));
      expect(await fs.readdir(out)).toEqual([]);
      expect(await temps(cache)).toEqual([]);
      expect((await fs.readdir(path.join(cache, 'sifpack', 'blobs', 'sha256')).catch(() => [])).length).toBe(0);

      const again = await sifpack(['pull', ref, '-o', 'pulled.sif', ...extra], { cwd: out, env });
      expect(again.code, again.stderr).toBe(0);
      execFileSync('cmp', [sif, path.join(out, 'pulled.sif')]);
    });
  }
});
