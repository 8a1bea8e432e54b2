import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers.js';
import { sifpack } from './cli.js';

let tmp: string;
beforeAll(async () => {
  tmp = await tempDir();
  await fs.writeFile(path.join(tmp, 'environment.yml'), 'name: t\nchannels: [conda-forge]\ndependencies: [python=3.11, numpy]\n');
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function builtinPresets(): Promise<{ name: string; description: string; notes: string[] }[]> {
  const dir = path.join(ROOT, 'defs');
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.yml'));
  return Promise.all(
    files.map(async (f) => {
      const y = parse(await fs.readFile(path.join(dir, f), 'utf8')) as { description: string; notes?: string[] };
      return { name: f.replace(/\.yml$/, ''), description: y.description, notes: y.notes ?? [] };
    }),
  );
}

it('def --help lists every preset in defs/ with its description (the list once missed rocm)', async () => {
  const r = await sifpack(['def', '--help'], { cwd: tmp });
  expect(r.code).toBe(0);
  const presets = await builtinPresets();
  expect(presets.map((p) => p.name)).toContain('rocm');
  for (const p of presets) expect(r.stdout).toMatch(new RegExp(`^  ${p.name} +${p.description.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
});

it("def prints the chosen preset's notes on writing (the cuda driver floor), hides them with -q, and --json carries them", async () => {
  const cuda = (await builtinPresets()).find((p) => p.name === 'cuda')!;
  expect(cuda.notes.some((n) => n.includes('525'))).toBe(true);
  const r = await sifpack(['def', 'environment.yml', '--base', 'cuda', '-o', 'train.def'], { cwd: tmp });
  expect(r.code, r.stderr).toBe(0);
  for (const n of cuda.notes) expect(r.stderr).toContain(`sifpack: note (preset cuda): ${n}\n`);
  const q = await sifpack(['def', 'environment.yml', '--base', 'cuda', '-o', 'train.def', '--force', '-q'], { cwd: tmp });
  expect(q.code, q.stderr).toBe(0);
  expect(q.stderr).not.toContain('note (preset');
  const j = await sifpack(['def', 'environment.yml', '--base', 'cuda', '--json'], { cwd: tmp });
  expect(j.code, j.stderr).toBe(0);
  expect((JSON.parse(j.stdout) as { notes: string[] }).notes).toEqual(cuda.notes);
});
