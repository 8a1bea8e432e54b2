import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { writeHashed } from '../../src/util/hashing-writer.js';
import { tempDir } from '../helpers.js';

async function* piecesOf(data: Buffer, cuts: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const c of cuts) {
    const end = Math.min(data.length, at + c);
    yield data.subarray(at, end);
    at = end;
  }
  if (at < data.length) yield data.subarray(at);
}

it('writes exactly the bytes it was given and hashes them, whatever the read sizes (up to several write batches)', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'out');
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 3 * 1024 * 1024 + 17 }), fc.array(fc.integer({ min: 1, max: 300_000 }), { maxLength: 40 }), async (size, cuts) => {
      const data = randomBytes(size);
      const fh = await fs.open(file, 'w');
      let r: { bytes: number; sha256: string };
      try {
        r = await writeHashed(piecesOf(data, cuts), fh);
      } finally {
        await fh.close();
      }
      expect(r.bytes).toBe(size);
      expect(r.sha256).toBe(createHash('sha256').update(data).digest('hex'));
      expect((await fs.readFile(file)).equals(data)).toBe(true);
    }),
    { numRuns: 25 },
  );
  await fs.rm(dir, { recursive: true });
});

/** A file handle that records calls, for what a real one cannot show (fsync calls, a failing disk). */
function recordingHandle(failWritevAt?: number) {
  const calls: string[] = [];
  let written = 0;
  let writevs = 0;
  const fh = {
    async writev(bufs: Uint8Array[]) {
      writevs++;
      if (failWritevAt !== undefined && writevs >= failWritevAt) throw Object.assign(new Error('No space left on device'), { code: 'ENOSPC' });
      await new Promise((r) => setTimeout(r, 1));
      const n = bufs.reduce((a, b) => a + b.length, 0);
      written += n;
      calls.push(`writev ${n}`);
      return { bytesWritten: n, buffers: bufs };
    },
    async datasync() {
      calls.push(`datasync at ${written}`);
    },
    async sync() {
      calls.push(`sync at ${written}`);
    },
  };
  return { fh: fh as unknown as FileHandle, calls, written: () => written };
}

it('durable: starts write-back every 64 MiB along the way and fsyncs once at the end, after the last write', async () => {
  const MiB = 1024 * 1024;
  const chunk = Buffer.alloc(MiB, 7);
  async function* source() {
    for (let i = 0; i < 150; i++) yield chunk;
  }
  const { fh, calls } = recordingHandle();
  const r = await writeHashed(source(), fh, { durable: true });
  expect(r.bytes).toBe(150 * MiB);
  expect(calls.filter((c) => c.startsWith('datasync')).length).toBe(2);
  expect(calls.at(-1)).toBe(`sync at ${150 * MiB}`);
  // Reads of 1 MiB are written a batch at a time, not one write per read of the network.
  expect(calls.filter((c) => c.startsWith('writev')).every((c) => Number(c.split(' ')[1]) >= MiB)).toBe(true);
  // Not durable: no fsync at all.
  const plain = recordingHandle();
  await writeHashed(source(), plain.fh);
  expect(plain.calls.some((c) => /sync/.test(c))).toBe(false);
});

it('a failing write stops the copy with the file system\'s error, without an unhandled rejection, and nothing still writes afterwards', async () => {
  const MiB = 1024 * 1024;
  let yielded = 0;
  async function* source() {
    for (let i = 0; i < 50; i++) {
      yielded++;
      yield Buffer.alloc(MiB, 1);
      // As a network read would: the failed write's rejection lives across turns of the event loop.
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    const { fh, calls } = recordingHandle(3);
    await expect(writeHashed(source(), fh)).rejects.toMatchObject({ code: 'ENOSPC' });
    const after = calls.length;
    await new Promise((r) => setTimeout(r, 20));
    expect(calls.length).toBe(after);
    expect(yielded).toBeLessThan(50);
  } finally {
    await new Promise((r) => setTimeout(r, 10));
    process.off('unhandledRejection', onUnhandled);
  }
  expect(unhandled).toEqual([]);
});

it('a source that fails midway rejects with its error once the write in flight has ended', async () => {
  const MiB = 1024 * 1024;
  async function* source() {
    yield Buffer.alloc(2 * MiB, 1);
    throw Object.assign(new Error('other side closed'), { code: 'ECONNRESET' });
  }
  const { fh, calls } = recordingHandle();
  await expect(writeHashed(source(), fh)).rejects.toMatchObject({ code: 'ECONNRESET' });
  const after = calls.length;
  await new Promise((r) => setTimeout(r, 20));
  expect(calls.length).toBe(after);
  expect(calls).toEqual([`writev ${2 * MiB}`]);
});

it('a short write (the disk filling up midway) goes on with the rest, so the error is the file system\'s (ENOSPC), not a count', async () => {
  const calls: string[] = [];
  const fh = {
    async writev(bufs: Uint8Array[]) {
      const n = bufs.reduce((a, b) => a + b.length, 0);
      calls.push(`writev ${n} -> ${n - 100}`);
      return { bytesWritten: n - 100, buffers: bufs };
    },
    async write(_b: Buffer, offset: number, length: number) {
      calls.push(`write ${offset}+${length}`);
      throw Object.assign(new Error('No space left on device'), { code: 'ENOSPC' });
    },
  } as unknown as FileHandle;
  async function* source() {
    yield Buffer.alloc(1000, 1);
  }
  await expect(writeHashed(source(), fh)).rejects.toMatchObject({ code: 'ENOSPC' });
  expect(calls).toEqual(['writev 1000 -> 900', 'write 900+100']);
});
