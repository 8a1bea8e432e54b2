import type { ChildProcess } from 'node:child_process';
import { promises as fs, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Real files from public projects, copied into the repository (see each set's SOURCE). */
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const CONDA_TESTDATA = path.join(FIXTURES, 'conda');
export const APPTAINER_IMAGES = path.join(FIXTURES, 'apptainer-images');

/** A fresh temp directory, removed by the caller's afterEach/afterAll if they like. */
export async function tempDir(prefix = 'sifpack-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

/**
 * Compares `actual` with test/golden/<name> (or an absolute path) byte for byte. UPDATE_GOLDEN=1
 * rewrites the file instead (then review the diff before committing).
 */
export async function expectGolden(name: string, actual: string): Promise<void> {
  const file = path.isAbsolute(name) ? name : path.join(ROOT, 'test', 'golden', name);
  if (process.env.UPDATE_GOLDEN === '1') {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, actual);
    return;
  }
  const expected = await fs.readFile(file, 'utf8').catch(() => {
    throw new Error(`golden file ${file} is missing: run with UPDATE_GOLDEN=1 and review it`);
  });
  expect(actual).toBe(expected);
}

/**
 * The value of a variable test/services/start.sh sets. Missing means the
 * services are not running: that fails the test (never a silent skip).
 */
export function service(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: the integration tests need the real services; run \`npm run test:all\` (or see test/services/README.md)`);
  return v;
}

/** Polls the child's peak RSS (VmHWM, kB) until it exits: the memory assertions of the streaming tests. */
export function peakRss(child: ChildProcess): Promise<{ code: number; peakKb: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    let peakKb = 0;
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (b: Buffer) => (stdout += b));
    child.stderr?.on('data', (b: Buffer) => (stderr += b));
    const t = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        /* exited */
      }
    }, 50);
    child.on('close', (code) => {
      clearInterval(t);
      resolve({ code: code ?? -1, peakKb, stdout, stderr });
    });
  });
}

/**
 * fs.cp filter for copying an example: leaves out .sifpack/, the state a
 * user's own `sifpack run` (README's first command) leaves in the checkout.
 */
export const withoutRunState = (src: string): boolean => !src.split(path.sep).includes('.sifpack');

/** Live processes (zombies count as gone) other than this one whose command line contains `needle`: what a Ctrl-C or a time limit must not leave running. */
export function processesWith(needle: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^\d+ \(.*\) /, '')[0];
      if (cmd.includes(needle) && state !== 'Z' && Number(pid) !== process.pid) found.push(`${pid} ${cmd}`);
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}
