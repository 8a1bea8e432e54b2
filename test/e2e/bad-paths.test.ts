/**
 * Every path argument of every command, given each kind of bad path a user
 * can type: a missing file, a directory, an unwritable target, a missing
 * parent directory, /dev/null. Each must end in exit 2 with a message that
 * names the argument, never "internal error" or a stack trace, and nothing
 * may be written (the temp directory and the working directory are compared
 * before and after). As root, the CLI runs without CAP_DAC_OVERRIDE (setpriv)
 * so a 0555 directory or a 0000 file really is off limits.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './cli.js';
import { FIXTURES, ROOT, tempDir } from '../helpers.js';

type Role = 'in-file' | 'in-dir' | 'out-file' | 'scratch-dir' | 'image';
type Case = 'missing' | 'directory' | 'regular file' | 'unwritable' | 'unreadable' | 'missing parent' | '/dev/null';

let dir: string;
let cwd: string;
const ENV = path.join(ROOT, 'examples', 'pandas-analysis', 'environment.yml');
const PREFIX = path.join(FIXTURES, 'conda', 'env_metadata', 'envpy313tosx_whl');

/** [command, argument label shown in messages, role, argv with BAD where the bad path goes] */
const ARGS: [string, string, Role, string[]][] = [
  ['export', '-p/--prefix', 'in-dir', ['export', '-p', 'BAD']],
  ['export', '-o/--output', 'out-file', ['export', '-p', PREFIX, '-o', 'BAD']],
  ['export', '--lock', 'out-file', ['export', '-p', PREFIX, '--lock', 'BAD']],
  ['def', 'ENV_FILE', 'in-file', ['def', 'BAD']],
  ['def', '--lock', 'in-file', ['def', ENV, '--lock', 'BAD']],
  ['def', '--from-prefix', 'in-dir', ['def', '--from-prefix', 'BAD']],
  ['def', '--defs', 'in-dir', ['def', ENV, '--defs', 'BAD']],
  ['def', '-o/--output', 'out-file', ['def', ENV, '-o', 'BAD']],
  ['def', '--config', 'in-file', ['--config', 'BAD', 'def', ENV]],
  ['build', 'ENV_FILE|DEF_FILE', 'in-file', ['build', 'BAD']],
  ['build', '--lock', 'in-file', ['build', ENV, '--lock', 'BAD']],
  ['build', '--from-prefix', 'in-dir', ['build', '--from-prefix', 'BAD']],
  ['build', '--defs', 'in-dir', ['build', ENV, '--defs', 'BAD']],
  ['build', '-o/--output', 'out-file', ['build', ENV, '-o', 'BAD']],
  ['build', '--docker-archive', 'out-file', ['build', ENV, '--docker-archive', 'BAD']],
  ['build', '--tmpdir', 'scratch-dir', ['build', ENV, '--tmpdir', 'BAD']],
  ['convert', '-o/--output', 'out-file', ['convert', 'sifpack-test/none:1', '-o', 'BAD']],
  ['inspect', 'IMAGE', 'image', ['inspect', 'BAD']],
  ['sbatch', '--script-out', 'out-file', ['sbatch', 'x.py', '--image', 'x.sif', '--script-out', 'BAD']],
  ['submit', 'FILE', 'in-file', ['submit', 'BAD']],
];

const CASES: Record<Role, Case[]> = {
  'in-file': ['missing', 'directory', 'unreadable', 'missing parent', '/dev/null'],
  'in-dir': ['missing', 'regular file', 'unreadable', 'missing parent', '/dev/null'],
  'out-file': ['directory', 'unwritable', 'missing parent', '/dev/null'],
  'scratch-dir': ['missing', 'regular file', 'unwritable', 'missing parent', '/dev/null'],
  // A directory is a sandbox image for inspect: one without .singularity.d is the bad case.
  image: ['missing', 'directory', 'unreadable', 'missing parent', '/dev/null'],
};

function badPath(c: Case): string {
  switch (c) {
    case 'missing':
      return path.join(dir, 'nothing-here');
    case 'directory':
      return path.join(dir, 'a-dir');
    case 'regular file':
      return path.join(dir, 'a-file');
    case 'unwritable':
      return path.join(dir, 'read-only-dir', 'out');
    case 'unreadable':
      return path.join(dir, 'no-access');
    case 'missing parent':
      return path.join(dir, 'missing', 'dir', 'x');
    case '/dev/null':
      return '/dev/null';
  }
}

/** For a scratch directory, "unwritable" is the read-only directory itself. */
const pathFor = (role: Role, c: Case) => (role === 'scratch-dir' && c === 'unwritable' ? path.join(dir, 'read-only-dir') : role === 'in-dir' && c === 'unreadable' ? path.join(dir, 'no-access-dir') : badPath(c));

async function snapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(root, { withFileTypes: true, recursive: true })) {
    const p = path.join(e.parentPath, e.name);
    const st = await fs.lstat(p);
    out.push(`${path.relative(root, p)} ${st.mode.toString(8)} ${st.isFile() ? st.size : ''}`);
  }
  return out.sort();
}

function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const asRoot = process.getuid?.() === 0;
  const [cmd, args] = asRoot ? ['setpriv', ['--bounding-set', '-dac_override,-dac_read_search', process.execPath, CLI, ...argv]] : [process.execPath, [CLI, ...argv]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd as string, args as string[], { cwd, env: { PATH: process.env.PATH, HOME: cwd, DOCKER_HOST: 'unix:///nonexistent.sock' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b));
    child.stderr.on('data', (b: Buffer) => (stderr += b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end();
  });
}

beforeAll(async () => {
  dir = await tempDir('sifpack-badpaths-');
  cwd = await tempDir('sifpack-badpaths-cwd-');
  await fs.mkdir(path.join(dir, 'a-dir'));
  await fs.writeFile(path.join(dir, 'a-file'), 'text\n');
  await fs.mkdir(path.join(dir, 'read-only-dir'));
  await fs.chmod(path.join(dir, 'read-only-dir'), 0o555);
  await fs.writeFile(path.join(dir, 'no-access'), 'secret\n');
  await fs.chmod(path.join(dir, 'no-access'), 0o000);
  await fs.mkdir(path.join(dir, 'no-access-dir'));
  await fs.chmod(path.join(dir, 'no-access-dir'), 0o000);
  // tempDir is 0700: fine, the CLI runs as the same user.
});

afterAll(async () => {
  await fs.chmod(path.join(dir, 'read-only-dir'), 0o755).catch(() => undefined);
  await fs.chmod(path.join(dir, 'no-access-dir'), 0o755).catch(() => undefined);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rm(cwd, { recursive: true, force: true });
});

describe('every path argument of every command, every kind of bad path: exit 2, named, nothing written', () => {
  for (const [command, label, role, argv] of ARGS) {
    it(`${command} ${label}`, async () => {
      const failures: string[] = [];
      const before = [await snapshot(dir), await snapshot(cwd)];
      // The cases of one argument run side by side (two cores, slow node start-up).
      const runs = await Promise.all(CASES[role].map((c) => run(argv.map((a) => (a === 'BAD' ? pathFor(role, c) : a)))));
      const after = [await snapshot(dir), await snapshot(cwd)];
      if (JSON.stringify(before) !== JSON.stringify(after)) failures.push(`something was written: ${JSON.stringify(after)}`);
      for (const [i, c] of CASES[role].entries()) {
        const r = runs[i]!;
        const problems: string[] = [];
        if (r.code !== 2) problems.push(`exit ${r.code}`);
        if (/internal error|\n\s+at /.test(r.stderr)) problems.push('internal error / stack trace');
        const error = r.stderr.split('\n').find((l) => l.startsWith('sifpack: error: ')) ?? '';
        if (!error) problems.push('no sifpack: error: line');
        if (!error.includes(label)) problems.push(`the error does not name ${label}`);
        if (problems.length) failures.push(`${c}: ${problems.join(', ')}\n    ${r.stderr.trim().split('\n').join('\n    ')}`);
      }
      expect((await fs.stat('/dev/null')).isCharacterDevice()).toBe(true);
      expect(failures).toEqual([]);
    }, 120_000);
  }

  it('the table covers every command that takes a path', () => {
    expect(new Set(ARGS.map((a) => a[0]))).toEqual(new Set(['export', 'def', 'build', 'convert', 'inspect', 'sbatch', 'submit']));
    expect(os.tmpdir()).not.toBe('');
  });
});
