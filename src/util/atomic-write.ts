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

/** A temp path in the same directory as `target`, so rename() is atomic. */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  return path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
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
    const e = err as NodeJS.ErrnoException;
    throw new RuntimeFailure(`cannot write ${target}: ${e.message}`, { cause: err });
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
    const e = err as NodeJS.ErrnoException;
    throw new RuntimeFailure(`cannot write ${staged.at(-1)?.target ?? 'output'}: ${e.message}`, { cause: err });
  }
}
