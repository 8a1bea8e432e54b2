/**
 * The local content-addressed cache of pulled SIFs:
 * CACHE_DIR/blobs/sha256/HEX, written only after the digest was verified,
 * read-only, so a file's name is its content. Also remembers which
 * repositories a digest was pushed to, so a push to another repository on
 * the same registry can mount the blob instead of uploading it again.
 */
import { constants, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sweepStaleTemps, tempPathFor, writeFailure } from '../util/atomic-write.js';

/** $XDG_CACHE_HOME/sifpack, else ~/.cache/sifpack. */
export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  return path.join(env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache'), 'sifpack');
}

export class BlobCache {
  constructor(readonly dir: string) {}

  pathOf(digest: string): string {
    return path.join(this.dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
  }

  /** The cached file when it is there with the expected size (a truncated or appended-to file is not trusted). */
  async lookup(digest: string, size: number): Promise<string | undefined> {
    const p = this.pathOf(digest);
    const st = await fs.stat(p).catch(() => undefined);
    return st?.isFile() && st.size === size ? p : undefined;
  }

  /**
   * A temp path for a download into the cache (same directory, so the rename
   * is atomic). A download of the same blob by a run that was killed left its
   * temp file: removed here.
   */
  async tempFor(digest: string): Promise<string> {
    const p = this.pathOf(digest);
    try {
      await fs.mkdir(path.dirname(p), { recursive: true });
    } catch (err) {
      throw writeFailure(p, err);
    }
    await sweepStaleTemps(p);
    return tempPathFor(p);
  }

  /** Moves a verified download into place, read-only. */
  async commit(tmp: string, digest: string): Promise<string> {
    const p = this.pathOf(digest);
    await fs.chmod(tmp, 0o444);
    await fs.rename(tmp, p);
    return p;
  }

  /**
   * Puts a copy of a cached blob at `target` atomically: a hard link where
   * the file system allows (no bytes copied), else a copy (a reflink where
   * supported).
   */
  async place(blob: string, target: string): Promise<'link' | 'copy'> {
    await sweepStaleTemps(target);
    const tmp = tempPathFor(target);
    let how: 'link' | 'copy' = 'link';
    try {
      try {
        await fs.link(blob, tmp);
      } catch {
        how = 'copy';
        await fs.copyFile(blob, tmp, constants.COPYFILE_FICLONE);
        await fs.chmod(tmp, 0o644);
      }
      await fs.rename(tmp, target);
    } catch (err) {
      // A copy that filled the disk leaves a partial temp file: never beside the target.
      await fs.rm(tmp, { force: true });
      throw writeFailure(target, err);
    }
    return how;
  }

  private get pushedFile(): string {
    return path.join(this.dir, 'pushed.json');
  }

  /** HOST/REPO names this digest was pushed to before. */
  async pushedTo(digest: string): Promise<string[]> {
    const all = JSON.parse(await fs.readFile(this.pushedFile, 'utf8').catch(() => '{}')) as Record<string, string[]>;
    return all[digest] ?? [];
  }

  async recordPush(digest: string, hostRepo: string): Promise<void> {
    const all = JSON.parse(await fs.readFile(this.pushedFile, 'utf8').catch(() => '{}')) as Record<string, string[]>;
    all[digest] = [hostRepo, ...(all[digest] ?? []).filter((r) => r !== hostRepo)].slice(0, 20);
    await fs.mkdir(this.dir, { recursive: true });
    const tmp = tempPathFor(this.pushedFile);
    await fs.writeFile(tmp, JSON.stringify(all));
    await fs.rename(tmp, this.pushedFile);
  }
}
