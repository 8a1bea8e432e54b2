/**
 * A Docker build context packed straight into a tar stream (tar-stream), no
 * temporary tar on disk: generated files (Dockerfile, env file, lock) and,
 * for --from-prefix, a whole directory walked lazily with its file modes,
 * symlinks and hard links kept. File contents are piped, never buffered.
 */
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export interface ContextFile {
  /** Path inside the context. */
  name: string;
  data: string | Buffer;
  mode?: number;
}

export interface ContextDir {
  /** Directory name inside the context, e.g. `prefix`. */
  name: string;
  /** The directory on the host. */
  source: string;
}

export interface PackReport {
  files: number;
  bytes: number;
  /** Things a tar cannot carry (sockets) or that could not be read. */
  skipped: string[];
}

/** Packs the context; the returned stream ends once everything is written. `report` fills as it goes. */
export function packContext(files: readonly ContextFile[], dirs: readonly ContextDir[], report: PackReport = { files: 0, bytes: 0, skipped: [] }): Readable {
  const pack = tar.pack();
  const mtime = new Date(0); // generated files: a fixed time keeps the context reproducible

  const addBuffer = (name: string, data: Buffer, mode: number) =>
    new Promise<void>((resolve, reject) => {
      pack.entry({ name, mode, mtime, size: data.length, type: 'file' }, data, (err) => (err ? reject(err) : resolve()));
      report.files++;
      report.bytes += data.length;
    });

  /** A header-only entry (directory, symlink, hard link). */
  const addHeader = (header: Parameters<typeof pack.entry>[0]) =>
    new Promise<void>((resolve, reject) => {
      pack.entry({ ...header, size: 0 }, Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });

  const walk = async (hostDir: string, ctxDir: string, inodes: Map<string, string>): Promise<void> => {
    const entries = (await fs.readdir(hostDir)).sort();
    for (const e of entries) {
      const host = path.join(hostDir, e);
      const name = `${ctxDir}/${e}`;
      const st = await fs.lstat(host);
      const base = { name, mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
      if (st.isSymbolicLink()) {
        await addHeader({ ...base, type: 'symlink', linkname: await fs.readlink(host) });
      } else if (st.isDirectory()) {
        await addHeader({ ...base, type: 'directory' });
        await walk(host, name, inodes);
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? inodes.get(key) : undefined;
        if (first) {
          await addHeader({ ...base, type: 'link', linkname: first });
          continue;
        }
        if (st.nlink > 1) inodes.set(key, name);
        const sink = pack.entry({ ...base, size: st.size, type: 'file' });
        await pipeline(createReadStream(host), sink);
        report.files++;
        report.bytes += st.size;
      } else {
        report.skipped.push(host);
      }
    }
  };

  (async () => {
    for (const f of files) await addBuffer(f.name, Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data), f.mode ?? 0o644);
    for (const d of dirs) {
      const st = await fs.stat(d.source);
      await addHeader({ name: d.name, type: 'directory', mode: st.mode & 0o7777, mtime: st.mtime });
      await walk(d.source, d.name, new Map());
    }
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  // tar-stream speaks streamx; hand callers a plain Node stream.
  return Readable.from(pack);
}
