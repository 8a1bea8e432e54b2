import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { InputError, RuntimeFailure } from '../errors.js';

export interface WriteOptions {
  /** Replace an existing file. Without it an existing file is an input error. */
  force?: boolean;
  /** File mode for the new file (default 0o644). */
  mode?: number;
  /** The flag that allows overwriting, named in the error (default `--force`). */
  forceFlag?: string;
}

/**
 * A temp path in the same directory as `target`, so rename() is atomic:
 * `.NAME.PID-RANDOM.tmp`. The PID lets a later run recognise the debris of a
 * run that was killed (SIGKILL, power loss) and remove it.
 */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  return path.join(dir, `.${path.basename(target)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, another user's
  }
}

/**
 * Removes temp files beside `target` that an earlier, killed sifpack run left
 * (their PID is gone). Files of a run still going are left alone. Returns the
 * names removed.
 */
export async function sweepStaleTemps(target: string): Promise<string[]> {
  const dir = path.dirname(path.resolve(target));
  const base = path.basename(target).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^\\.${base}\\.(\\d+)-[0-9a-f]{12}\\.tmp(?:\\.[a-z]+)*$`);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const n of names) {
    const m = re.exec(n);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    await fs.rm(path.join(dir, n), { force: true, recursive: true }).catch(() => undefined);
    removed.push(n);
  }
  return removed;
}

/**
 * A file-system error while writing `target`, in words: disk full and quota
 * name the directory, so the user knows where to make room.
 */
export function writeFailure(target: string, err: unknown): RuntimeFailure {
  const e = err as NodeJS.ErrnoException;
  const dir = path.dirname(path.resolve(target));
  switch (e?.code) {
    case 'ENOSPC':
      return new RuntimeFailure(`no space left on ${dir} while writing ${target}`, { hint: 'free some space there, or write the output elsewhere', cause: err });
    case 'EDQUOT':
      return new RuntimeFailure(`disk quota exceeded on ${dir} while writing ${target}`, { hint: 'check your quota (e.g. `quota -s` or the site\'s tool), or write the output elsewhere', cause: err });
    case 'EROFS':
      return new RuntimeFailure(`${dir} is on a read-only file system: cannot write ${target}`, { cause: err });
    case 'EACCES':
    case 'EPERM':
      return new RuntimeFailure(`permission denied writing ${target}`, { hint: `check that you may write to ${dir}`, cause: err });
    default:
      return new RuntimeFailure(`cannot write ${target}: ${e?.message ?? String(err)}`, { cause: err });
  }
}

/**
 * Creates a directory sifpack keeps state in (.sifpack/, build dirs), never
 * group- or world-writable whatever the umask: a shared project directory must
 * not let others rewrite the ledger or the cache.
 */
export async function makeStateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const st = await fs.stat(dir);
  if (st.mode & 0o022 && st.uid === process.getuid?.()) await fs.chmod(dir, st.mode & ~0o022 & 0o7777);
}

/** Fails with exit 2 when `target` exists and `force` is not set. */
export async function refuseOverwrite(target: string, opts: WriteOptions = {}): Promise<void> {
  if (opts.force) return;
  try {
    await fs.access(target, constants.F_OK);
  } catch {
    return;
  }
  throw new InputError(`${target} already exists`, {
    hint: `pass ${opts.forceFlag ?? '--force'} to overwrite it, or choose another output path`,
  });
}

/**
 * Writes a whole file atomically: temp file in the same directory, fsync,
 * rename. A crash leaves either the old file or the new one, never half.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array, opts: WriteOptions = {}): Promise<void> {
  await refuseOverwrite(target, opts);
  await sweepStaleTemps(target);
  const tmp = tempPathFor(target);
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(tmp, 'wx', opts.mode ?? 0o644);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(tmp, target);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    if (err instanceof InputError) throw err;
    throw writeFailure(target, err);
  }
}

/**
 * Writes several files so that either all appear or none do: each goes to a
 * temp file first, and only when every one is written are they renamed.
 */
export async function writeFilesAtomic(
  files: { path: string; data: string | Uint8Array; mode?: number }[],
  opts: WriteOptions = {},
): Promise<void> {
  for (const f of files) await refuseOverwrite(f.path, opts);
  const staged: { tmp: string; target: string }[] = [];
  try {
    for (const f of files) {
      const tmp = tempPathFor(f.path);
      staged.push({ tmp, target: f.path });
      const handle = await fs.open(tmp, 'wx', f.mode ?? opts.mode ?? 0o644);
      try {
        await handle.writeFile(f.data);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    for (const s of staged) await fs.rename(s.tmp, s.target);
  } catch (err) {
    await Promise.all(staged.map((s) => fs.rm(s.tmp, { force: true })));
    throw writeFailure(staged.at(-1)?.target ?? files[0]?.path ?? 'output', err);
  }
}
