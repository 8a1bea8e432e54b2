/**
 * The README's promises, checked against the built CLI: its first command
 * runs as written (in a copy of the example, with no apptainer, Docker or
 * Slurm on PATH) and prints exactly the summary the README shows; its links
 * stay inside the repository; `--help` lists only commands that exist, in
 * pipeline order.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir, withoutRunState } from '../helpers.js';
import { sifpack } from './cli.js';

let readme: string;
let tmp: string;
beforeAll(async () => {
  readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
  tmp = await tempDir('sifpack-readme-');
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** The fenced blocks of the README, in order. */
const blocks = () => [...readme.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], text: m[2]! }));

describe('README', () => {
  it('the first command is one line: npm ci, then `sifpack run ... --plan` on the bundled example', () => {
    const first = blocks()[0]!;
    expect(first.lang).toBe('sh');
    expect(first.text).toBe('npm ci && cd examples/pandas-analysis && npx sifpack run analyze.py measurements.csv -p envs/analysis --plan\n');
  });

  it('runs as written where nothing but Node is (empty PATH, no DOCKER_HOST) and prints the summary the README shows', async () => {
    const copy = path.join(tmp, 'pandas-analysis');
    await fs.cp(path.join(ROOT, 'examples', 'pandas-analysis'), copy, { recursive: true, filter: withoutRunState });
    const cmd = blocks()[0]!.text.trim().split(' && ').at(-1)!.split(' ');
    expect(cmd.slice(0, 2)).toEqual(['npx', 'sifpack']);
    const r = await sifpack(cmd.slice(2), { cwd: copy, env: { PATH: '', DOCKER_HOST: '' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(blocks()[1]!.text);
    for (const f of ['environment.yml', 'environment.lock', 'analysis.def', 'analyze.sbatch']) await fs.access(path.join(copy, '.sifpack', 'analysis', f));
  });

  it('links and paths stay inside the repository', async () => {
    expect(readme).not.toMatch(/\.\.\//);
    for (const m of readme.matchAll(/`(docs\/[A-Z]+\.md|test\/[\w/.-]+|examples\/[\w/.-]+)`/g)) await fs.access(path.join(ROOT, m[1]!));
  });

  it('the user documentation comes first, the development notes last', () => {
    const dev = readme.indexOf('## Development');
    expect(dev).toBeGreaterThan(readme.indexOf('## Five minutes'));
    expect(readme.slice(dev + 1)).not.toMatch(/^## /m);
    // The two commands open the README (the main job, then the whole test suite); the test notes also live under Development.
    expect(readme.indexOf('npm run test:all')).toBeLessThan(readme.indexOf('## Five minutes'));
    expect(readme.lastIndexOf('npm run test:all')).toBeGreaterThan(dev);
  });
});

describe('sifpack --help', () => {
  it('lists only the commands that exist, in pipeline order, each with one line', async () => {
    const r = await sifpack(['--help']);
    expect(r.code).toBe(0);
    const commands = r.stdout.split('Commands:\n')[1]!.split('\n\n')[0]!.split('\n').map((l) => l.trim().split(' ')[0]);
    expect(commands).toEqual(['doctor', 'export', 'def', 'build', 'convert', 'inspect', 'sign', 'verify', 'push', 'pull', 'sbatch', 'submit', 'status', 'cancel', 'logs', 'migrate', 'run', 'help']);
    const helps = await Promise.all(commands.slice(0, -1).map((c) => sifpack([c!, '--help'])));
    helps.forEach((h, i) => expect(h.code, `${commands[i]} --help`).toBe(0));
  }, 300_000); // eleven CLI processes at once: minutes on a loaded 2-core machine
});
