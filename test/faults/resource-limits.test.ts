/**
 * Resource limits: inputs far larger than real ones. Each command either
 * handles them in time proportional to their size with bounded memory, or
 * refuses with exit 2 before reading them whole.
 *   - a 10 GB sparse file that claims to be a SIF, and one that is not:
 *     inspect reads only the header and descriptors (milliseconds, no 10 GB read);
 *   - a prefix with 50,000 packages and a 1-million-line history: export and
 *     export --from-history finish with the Node process's peak RSS bounded.
 * Figures for the scaling are in docs/BENCHMARKS.md (export: 500 packages in 67 ms).
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../e2e/cli.js';
import { type PkgSpec, writePrefix } from '../fixtures/prefix-builder.js';
import { ROOT, tempDir } from '../helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir('sifpack-limits-');
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Runs the CLI and samples its peak RSS from /proc (VmHWM). */
function runMeasured(args: string[]): Promise<{ code: number; stderr: string; peakMiB: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { PATH: process.env.PATH, HOME: dir } });
    let stderr = '';
    let peak = 0;
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const sample = setInterval(async () => {
      const s = await fs.readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
      const kb = Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0);
      peak = Math.max(peak, kb);
    }, 50);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(sample);
      resolve({ code: code ?? -1, stderr, peakMiB: peak / 1024, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

describe('resource limits', () => {
  it('inspect of a 10 GB sparse file: a SIF header in front, or none, answers in well under a second', async () => {
    const sif = path.join(dir, 'huge.sif');
    const head = await fs.readFile(path.join(ROOT, 'test/fixtures/apptainer-images/busybox_amd64.sif'));
    await fs.writeFile(sif, head.subarray(0, 40_000));
    await fs.truncate(sif, 10 * 2 ** 30);
    const junk = path.join(dir, 'junk.bin');
    await fs.writeFile(junk, '');
    await fs.truncate(junk, 10 * 2 ** 30);
    for (const f of [sif, junk]) {
      const r = await runMeasured(['inspect', f, '--json']);
      expect(r.stderr).not.toMatch(/internal error/);
      expect([0, 2], r.stderr).toContain(r.code);
      // Node's own start-up is most of this; reading 10 GB would take a minute.
      expect(r.seconds).toBeLessThan(5);
      expect(r.peakMiB).toBeLessThan(200);
    }
  }, 60_000);

  it('export of a 50,000-package prefix with a 1,000,000-line history: done, memory bounded', async () => {
    const packages: PkgSpec[] = [{ name: 'python', version: '3.11.8', build: 'hab00c5b_0_cpython' }];
    for (let i = 0; i < 50_000; i++) packages.push({ name: `pkg${i}`, version: '1.0', build: 'h0_0' });
    const lines: string[] = [];
    for (let i = 0; lines.length < 1_000_000; i++) {
      lines.push(`==> 2024-01-01 00:00:${String(i % 60).padStart(2, '0')} <==`, `# cmd: conda install pkg${i % 50_000}`, `+conda-forge/linux-64::pkg${i % 50_000}-1.0-h0_0`, `# update specs: ["pkg${i % 50_000}"]`);
    }
    const prefix = await writePrefix(path.join(dir, 'big-env'), { packages, history: `${lines.join('\n')}\n` });
    for (const extra of [[], ['--from-history']]) {
      const r = await runMeasured(['export', '-p', prefix, '-o', path.join(dir, `out${extra.length}.yml`), '--force', ...extra]);
      expect(r.stderr).not.toMatch(/internal error/);
      expect(r.code, r.stderr).toBe(0);
      // 50k records of ~1 KB each are read one by one; the history is ~60 MB of text.
      expect(r.peakMiB, `peak RSS ${r.peakMiB.toFixed(0)} MiB`).toBeLessThan(1024);
      console.log(`export ${extra.join(' ') || '(full)'}: ${r.seconds.toFixed(1)} s, peak RSS ${r.peakMiB.toFixed(0)} MiB`);
    }
    const out = await fs.readFile(path.join(dir, 'out0.yml'), 'utf8');
    expect(out.split('\n').filter((l) => l.startsWith('  - pkg')).length).toBe(50_000);
  }, 600_000);
});
