/**
 * Checks of the paths a user types, done before any work so a bad path ends
 * in exit 2 with a message naming the argument and what is wrong with it
 * (missing, a directory, a device, not writable, no such parent directory),
 * never in an errno stack trace or a half-written file.
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';

type Kind = 'file' | 'directory';

function describe(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device, not a regular file';
  if (st.isFIFO()) return 'a pipe, not a regular file';
  if (st.isSocket()) return 'a socket, not a regular file';
  return 'a regular file';
}

/** The label shown: `-o /x/y.sif` or `ENV_FILE env.yml`. */
const label = (arg: string, shown: string) => `${arg} ${shown}`;

/** The nearest ancestor of `p` that exists, and what it is. */
async function existingParent(p: string): Promise<{ dir: string; st: import('node:fs').Stats | undefined; missing: string }> {
  let dir = path.dirname(p);
  let missing = dir;
  for (;;) {
    const st = await fs.stat(dir).catch(() => undefined);
    if (st) return { dir, st, missing };
    missing = dir;
    const up = path.dirname(dir);
    if (up === dir) return { dir, st: undefined, missing };
    dir = up;
  }
}

async function explainMissing(abs: string, arg: string, shown: string, kind: Kind, hint?: string): Promise<InputError> {
  const { dir, st } = await existingParent(abs);
  if (st && !st.isDirectory()) return new InputError(`${label(arg, shown)}: ${dir} is ${describe(st)}, so nothing can be below it`, { hint: `check the path given to ${arg}` });
  const parent = path.dirname(abs);
  if (dir !== parent) return new InputError(`${label(arg, shown)}: no such ${kind}: the directory ${parent} does not exist`, { hint: hint ?? `check the path given to ${arg}` });
  return new InputError(`${label(arg, shown)}: no such ${kind}`, { hint: hint ?? `check the path given to ${arg}` });
}

/** An existing, readable regular file (an input). */
export async function checkInputFile(p: string, arg: string, opts: { cwd: string; hint?: string }): Promise<string> {
  const abs = path.resolve(opts.cwd, p);
  const st = await fs.stat(abs).catch(() => undefined);
  if (!st) throw await explainMissing(abs, arg, p, 'file', opts.hint);
  if (!st.isFile()) throw new InputError(`${label(arg, p)}: is ${describe(st)}; expected a file`, { hint: opts.hint ?? `give ${arg} a file` });
  try {
    await fs.access(abs, constants.R_OK);
  } catch {
    throw new InputError(`${label(arg, p)}: not readable (permission denied)`, { hint: `check the file's permissions (ls -l ${abs})` });
  }
  return abs;
}

/** An existing, readable directory (an input such as a prefix or a presets folder). */
export async function checkInputDir(p: string, arg: string, opts: { cwd: string; hint?: string; writable?: boolean }): Promise<string> {
  const abs = path.resolve(opts.cwd, p);
  const st = await fs.stat(abs).catch(() => undefined);
  if (!st) throw await explainMissing(abs, arg, p, 'directory', opts.hint);
  if (!st.isDirectory()) throw new InputError(`${label(arg, p)}: is ${describe(st)}; expected a directory`, { hint: opts.hint ?? `give ${arg} a directory` });
  try {
    await fs.access(abs, constants.R_OK | constants.X_OK | (opts.writable ? constants.W_OK : 0));
  } catch {
    throw new InputError(`${label(arg, p)}: not ${opts.writable ? 'writable' : 'readable'} (permission denied)`, { hint: `check the directory's permissions (ls -ld ${abs})` });
  }
  return abs;
}

/**
 * A file this command will create (atomically, in the same directory): the
 * target is not a directory or a device, its directory exists and is
 * writable, and it does not exist yet unless `force`.
 */
export async function checkOutputFile(p: string, arg: string, opts: { cwd: string; force?: boolean; forceFlag?: string }): Promise<string> {
  const abs = path.resolve(opts.cwd, p);
  const st = await fs.stat(abs).catch(() => undefined);
  if (st && !st.isFile()) {
    throw new InputError(`${label(arg, p)}: is ${describe(st)}; expected the path of a file to write`, {
      hint: st.isDirectory() ? `name a file inside it, e.g. ${path.join(p, 'out')}` : `name a regular file for ${arg}`,
    });
  }
  const dir = path.dirname(abs);
  const dst = await fs.stat(dir).catch(() => undefined);
  if (!dst) {
    const { dir: existing, st: est } = await existingParent(abs);
    if (est && !est.isDirectory()) throw new InputError(`${label(arg, p)}: ${existing} is ${describe(est)}, so nothing can be written below it`, { hint: `check the path given to ${arg}` });
    throw new InputError(`${label(arg, p)}: the directory ${dir} does not exist`, { hint: `create it first (mkdir -p ${dir}) or choose another path` });
  }
  if (!dst.isDirectory()) throw new InputError(`${label(arg, p)}: ${dir} is ${describe(dst)}, not a directory`, { hint: `check the path given to ${arg}` });
  try {
    await fs.access(dir, constants.W_OK | constants.X_OK);
  } catch {
    throw new InputError(`${label(arg, p)}: the directory ${dir} is not writable (permission denied)`, { hint: 'choose a directory you can write to' });
  }
  if (st && !opts.force) throw new InputError(`${abs} already exists`, { hint: `pass ${opts.forceFlag ?? '--force'} to overwrite it, or choose another output path` });
  if (st) {
    try {
      await fs.access(abs, constants.W_OK);
    } catch {
      throw new InputError(`${label(arg, p)}: not writable (permission denied)`, { hint: `check the file's permissions (ls -l ${abs})` });
    }
  }
  return abs;
}
