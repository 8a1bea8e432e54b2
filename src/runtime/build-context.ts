/**
 * A Docker build context packed straight into a tar stream (tar-stream), no
 * temporary tar on disk: generated files (Dockerfile, env file, lock) and,
 * for --from-prefix, a whole directory walked lazily with symlinks and hard
 * links kept, relocated on the way (src/model/relocation.ts) to the path it
 * has in the image, every entry root's and a+rX. The same stream, written to
 * a file, is the tarball a definition file unpacks in %post. Files that hold
 * no old prefix are piped; only a file being rewritten is held in memory.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { InputError } from '../errors.js';
import { type FileMode, PrefixTooLongError, type RecordHash, type Relocated, imageMode, recordsChannels, relocateContent, relocateLinkTarget, rewriteRecord, scrubCredentials } from '../model/relocation.js';

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
  /** For a conda prefix: relocate it, give every entry a+rX and root, leave out what the checks skipped. */
  prefix?: PrefixTransform;
}

/** How a prefix is moved in the stream; the host's files are only read. */
export interface PrefixTransform {
  /** The prefix as it is on the host. */
  from: string;
  /** Its path in the image (the same as `from` with --keep-prefix-path: nothing to rewrite). */
  to: string;
  /** conda's `file_mode` for files its records list with a prefix placeholder, by path relative to the prefix. */
  fileModes: ReadonlyMap<string, FileMode>;
  /** Paths relative to the prefix left out (a directory: all below it). */
  skip: ReadonlySet<string>;
  report: RelocationReport;
}

export interface RelocationReport {
  text: number;
  binary: number;
  pyc: number;
  links: number;
  records: number;
  /** .pyc files left out because their strings could not be rewritten. */
  dropped: string[];
  /** Files holding the old prefix that are neither text, ELF nor .pyc: shipped unchanged. */
  opaque: string[];
  /** conda-meta records, history, .condarc whose channel URLs had credentials taken out. */
  scrubbed: string[];
}

export const emptyRelocationReport = (): RelocationReport => ({ text: 0, binary: 0, pyc: 0, links: 0, records: 0, dropped: [], opaque: [], scrubbed: [] });

export interface PackReport {
  files: number;
  bytes: number;
  /** Things a tar cannot carry (sockets) or that could not be read. */
  skipped: string[];
}

/** Files up to this size are read whole (and relocated); bigger ones are scanned first and streamed when clean. */
const IN_MEMORY = 64 * 2 ** 20;

/** True when the file holds `needle`, read in chunks (a needle across two chunks is caught by the overlap). */
async function fileContains(file: string, needle: Buffer): Promise<boolean> {
  let tail = Buffer.alloc(0);
  for await (const chunk of createReadStream(file, { highWaterMark: 2 ** 20 })) {
    const buf = Buffer.concat([tail, chunk as Buffer]);
    if (buf.indexOf(needle) >= 0) return true;
    tail = buf.subarray(Math.max(0, buf.length - needle.length + 1));
  }
  return false;
}

const recordHash = (data: Buffer): RecordHash => ({ hash: createHash('sha256').update(data).digest('base64url'), size: data.length });

/** Packs the context; the returned stream ends once everything is written. `report` fills as it goes. */
export function packContext(files: readonly ContextFile[], dirs: readonly ContextDir[], report: PackReport = { files: 0, bytes: 0, skipped: [] }): Readable {
  const pack = tar.pack();
  const mtime = new Date(0); // generated files: a fixed time keeps the context reproducible

  const addBuffer = (name: string, data: Buffer, mode: number, header: Partial<Parameters<typeof pack.entry>[0]> = {}) =>
    new Promise<void>((resolve, reject) => {
      pack.entry({ name, mode, mtime, ...header, size: data.length, type: 'file' }, data, (err) => (err ? reject(err) : resolve()));
      report.files++;
      report.bytes += data.length;
    });

  /** A header-only entry (directory, symlink, hard link). */
  const addHeader = (header: Parameters<typeof pack.entry>[0]) =>
    new Promise<void>((resolve, reject) => {
      pack.entry({ ...header, size: 0 }, Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });

  const packDir = async (d: ContextDir): Promise<void> => {
    const t = d.prefix;
    const relocating = !!t && t.from !== t.to;
    const needle = Buffer.from(t?.from ?? '');
    /** Files whose content changed, by path relative to the prefix: what RECORDs must say. */
    const changed = new Map<string, RecordHash>();
    const inodes = new Map<string, { name: string; rel: string }>();
    const records: { host: string; name: string; rel: string; header: Parameters<typeof pack.entry>[0] }[] = [];
    const mode = (st: import('node:fs').Stats) => (t ? imageMode(st.mode, st.isDirectory()) : st.mode & 0o7777);
    const owner = t ? { uid: 0, gid: 0, uname: 'root', gname: 'root' } : { uid: 0, gid: 0 };

    const addFile = async (host: string, name: string, rel: string, st: import('node:fs').Stats) => {
      const header = { name, mode: mode(st), mtime: st.mtime, ...owner };
      // Small files are read whole: measured here, a per-file read stream piped into tar-stream
      // spent ~7 ms per file waiting (bench/relocate.mjs), readFile ~1 ms.
      if (t && recordsChannels(rel)) {
        // conda's records, history and .condarc name channels, maybe with a token: never into an image.
        let data: Buffer = await fs.readFile(host);
        const clean = scrubCredentials(data);
        if (clean) {
          data = clean;
          t.report.scrubbed.push(rel);
        }
        if (relocating) {
          const out = relocateContent(rel, data, t.from, t.to, t.fileModes.get(rel));
          if (out.kind === 'text') t.report.text++;
          if (out.kind !== 'dropped') data = out.data;
        }
        await addBuffer(name, data, header.mode, header);
        return;
      }
      if (!relocating && st.size <= IN_MEMORY) {
        await addBuffer(name, await fs.readFile(host), header.mode, header);
        return;
      }
      if (relocating && (st.size <= IN_MEMORY || (await fileContains(host, needle)))) {
        if (/\.(dist|egg)-info\/RECORD$/.test(rel)) {
          records.push({ host, name, rel, header });
          return;
        }
        const data = await fs.readFile(host);
        let out: Relocated;
        try {
          out = relocateContent(rel, data, t.from, t.to, t.fileModes.get(rel));
        } catch (err) {
          if (err instanceof PrefixTooLongError) {
            throw new InputError(`${host}: a binary file holds the prefix ${t.from}, which is shorter than ${t.to}: ${err.message}, and a binary's strings cannot grow`, {
              hint: `recreate the env at a path at least ${t.to.length} characters long, or pass --keep-prefix-path`,
            });
          }
          throw err;
        }
        if (out.kind === 'dropped') {
          t.report.dropped.push(rel);
          return;
        }
        if (out.kind === 'opaque') t.report.opaque.push(rel);
        else if (out.kind !== 'unchanged') {
          t.report[out.kind]++;
          changed.set(rel, recordHash(out.data));
        }
        await addBuffer(name, out.data, header.mode, header);
        return;
      }
      const sink = pack.entry({ ...header, size: st.size, type: 'file' });
      await pipeline(createReadStream(host), sink);
      report.files++;
      report.bytes += st.size;
    };

    const walk = async (hostDir: string, ctxDir: string, relDir: string): Promise<void> => {
      const entries = (await fs.readdir(hostDir)).sort();
      for (const e of entries) {
        const host = path.join(hostDir, e);
        const name = `${ctxDir}/${e}`;
        const rel = relDir ? `${relDir}/${e}` : e;
        if (t?.skip.has(rel)) continue;
        const st = await fs.lstat(host);
        const base = { name, mode: mode(st), mtime: st.mtime, ...owner };
        if (st.isSymbolicLink()) {
          const target = await fs.readlink(host);
          const moved = relocating ? relocateLinkTarget(target, t.from, t.to) : target;
          if (moved !== target) t!.report.links++;
          await addHeader({ ...base, mode: 0o777, type: 'symlink', linkname: moved });
        } else if (st.isDirectory()) {
          await addHeader({ ...base, type: 'directory' });
          await walk(host, name, rel);
        } else if (st.isFile()) {
          const key = `${st.dev}:${st.ino}`;
          const first = st.nlink > 1 ? inodes.get(key) : undefined;
          if (first) {
            // A hard link to a file already in the stream: the tar entry points at it, so the image keeps one inode.
            await addHeader({ ...base, type: 'link', linkname: first.name });
            const c = changed.get(first.rel);
            if (c) changed.set(rel, c);
            continue;
          }
          if (st.nlink > 1) inodes.set(key, { name, rel });
          await addFile(host, name, rel, st);
        } else {
          report.skipped.push(host);
        }
      }
    };

    const st = await fs.stat(d.source);
    await addHeader({ name: d.name, type: 'directory', mode: mode(st), mtime: st.mtime, ...owner });
    await walk(d.source, d.name, '');
    // RECORDs last: by now every file they list has its relocated hash.
    for (const r of records) {
      const text = await fs.readFile(r.host, 'utf8');
      const out = Buffer.from(rewriteRecord(text, r.rel.split('/').slice(0, -1).join('/'), changed, t!.from, t!.to));
      if (!out.equals(Buffer.from(text))) t!.report.records++;
      await addBuffer(r.name, out, r.header.mode ?? 0o644, r.header);
    }
  };

  (async () => {
    for (const f of files) await addBuffer(f.name, Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data), f.mode ?? 0o644);
    for (const d of dirs) await packDir(d);
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  // tar-stream speaks streamx; hand callers a plain Node stream.
  return Readable.from(pack);
}
