/**
 * Writes a byte stream to a file while computing its sha256, in one pass.
 *
 * What measurably matters for a 500 MiB download on a small login node
 * (bench/push-pull.mjs, docs/BENCHMARKS.md):
 * - reading goes on while the previous ~1 MiB is written (one write in
 *   flight, never two: concurrent writers of one file contend for its inode
 *   lock, and the kernel spins on it);
 * - writes of about 1 MiB: 4 MiB ones, or whatever piled up meanwhile, cost
 *   seconds more system time per GiB on the development VM's kernel (6.18);
 * - hashing on this thread: a worker thread was slower on two cores, since
 *   handing it the bytes costs a copy and the cores are busy anyway;
 * - with `durable`, write-back is started every 64 MiB, so the final fsync
 *   has little left to do (an fsync of the whole file at the end added
 *   ~0.4 s per 500 MiB; this way ~0.1 s).
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

const MiB = 1024 * 1024;
const WRITE_SIZE = 1 * MiB;
const SYNC_EVERY = 64 * MiB;

export interface HashingWriteOptions {
  /** fsync before returning (with write-back started along the way). */
  durable?: boolean;
}

/**
 * Writes `chunks` into `fh` (at its current position, normally 0); returns
 * the byte count and the sha256 (hex). On a throw (from the source or a
 * write), the write in flight has ended before this returns, so the caller
 * may remove the file.
 */
export async function writeHashed(chunks: AsyncIterable<Uint8Array>, fh: FileHandle, o: HashingWriteOptions = {}): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let bytes = 0;
  let writing: Promise<void> = Promise.resolve();
  let syncedAt = 0;
  let syncing: Promise<void> | undefined;

  const writeAll = async (bufs: Uint8Array[], length: number) => {
    let { bytesWritten } = await fh.writev(bufs);
    if (bytesWritten === length) return;
    // A short write (the disk filled up midway): write the rest, so the file system says why (ENOSPC, EDQUOT).
    const all = Buffer.concat(bufs, length);
    while (bytesWritten < length) {
      const n = (await fh.write(all, bytesWritten, length - bytesWritten)).bytesWritten;
      if (n === 0) throw Object.assign(new Error(`short write (${bytesWritten} of ${length} bytes)`), { code: 'EIO' });
      bytesWritten += n;
    }
  };
  const flush = async () => {
    const bufs = pending;
    const length = pendingBytes;
    pending = [];
    pendingBytes = 0;
    await writing;
    writing = writeAll(bufs, length);
    // Seen at the next flush or at the end; until then, not an unhandled rejection.
    writing.catch(() => undefined);
    if (o.durable && !syncing && bytes - syncedAt >= SYNC_EVERY) {
      syncedAt = bytes;
      // Beside the writes, not in their chain: a datasync must not hold up the next write.
      // One at a time (the `!syncing` above), so the one that ends is the current one.
      syncing = writing.then(() => fh.datasync()).then(() => void (syncing = undefined));
      syncing.catch(() => undefined);
    }
  };

  try {
    for await (const chunk of chunks) {
      hash.update(chunk);
      bytes += chunk.length;
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= WRITE_SIZE) await flush();
    }
    if (pendingBytes) await flush();
    await writing;
    await syncing;
    if (o.durable) await fh.sync();
    return { bytes, sha256: hash.digest('hex') };
  } finally {
    // Nothing may still write into the file once the caller sees the outcome.
    await Promise.allSettled([writing, syncing]);
  }
}
