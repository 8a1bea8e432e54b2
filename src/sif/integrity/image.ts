/**
 * A SIF as the integrity code needs it: the raw header and raw descriptor
 * bytes (digests cover them exactly as stored, padding included), each used
 * descriptor decoded, and object data read or hashed by streaming.
 *
 * Group ids follow sylabs/sif pkg/sif: the stored value carries the 0xf0000000
 * mask; GroupID() strips it, so 0 and 0xf0000000 both mean "no group".
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { DESCRIPTOR_SIZE, type Descriptor, HEADER_SIZE, type Header, decodeDescriptor, decodeHeader } from '../layout.js';
import { readObjectBytes, readSif } from '../reader.js';

export interface RawDescriptor {
  /** Slot index in the descriptor table (id = slot + 1 for objects sylabs/sif adds). */
  slot: number;
  raw: Buffer;
  d: Descriptor;
}

export interface IntegrityImage {
  path: string;
  fileSize: number;
  rawHeader: Buffer;
  header: Header;
  /** The whole descriptor table, used and free slots. */
  rawTable: Buffer;
  /** Used descriptors in slot order. */
  descriptors: RawDescriptor[];
}

/** Loads header and descriptor table; readSif does the checks (exit 2 on a file that is no SIF). */
export async function loadIntegrityImage(file: string): Promise<IntegrityImage> {
  const img = await readSif(file);
  const handle = await fs.open(file, 'r');
  try {
    const rawHeader = Buffer.alloc(HEADER_SIZE);
    await handle.read(rawHeader, 0, HEADER_SIZE, 0);
    const total = Number(img.header.descriptorsTotal);
    const rawTable = Buffer.alloc(total * DESCRIPTOR_SIZE);
    await handle.read(rawTable, 0, rawTable.length, Number(img.header.descriptorsOffset));
    const descriptors: RawDescriptor[] = [];
    for (let slot = 0; slot < total; slot++) {
      const raw = rawTable.subarray(slot * DESCRIPTOR_SIZE, (slot + 1) * DESCRIPTOR_SIZE);
      const d = decodeDescriptor(raw);
      if (d.used) descriptors.push({ slot, raw: Buffer.from(raw), d });
    }
    return { path: file, fileSize: img.fileSize, rawHeader, header: decodeHeader(rawHeader), rawTable, descriptors };
  } finally {
    await handle.close();
  }
}

/** Hashes an object's data without holding it in memory (partitions can be GBs). */
export async function hashObject(img: IntegrityImage, d: Descriptor, algorithm: string): Promise<Buffer> {
  const h = createHash(algorithm);
  if (d.size > 0n) {
    const stream = createReadStream(img.path, { start: Number(d.offset), end: Number(d.offset + d.size) - 1, highWaterMark: 1 << 20 });
    for await (const chunk of stream) h.update(chunk as Buffer);
  }
  return h.digest();
}

/** Hashes several objects' data back to back (the legacy group digest). */
export async function hashObjects(img: IntegrityImage, ds: Descriptor[], algorithm: string): Promise<Buffer> {
  const h = createHash(algorithm);
  for (const d of ds) {
    if (d.size === 0n) continue;
    const stream = createReadStream(img.path, { start: Number(d.offset), end: Number(d.offset + d.size) - 1, highWaterMark: 1 << 20 });
    for await (const chunk of stream) h.update(chunk as Buffer);
  }
  return h.digest();
}

/** A small object's bytes (signatures). */
export async function readObjectData(img: IntegrityImage, d: Descriptor, maxBytes = 16 * 1024 * 1024): Promise<Buffer> {
  if (d.size > BigInt(maxBytes)) throw new RangeError(`object ${d.id} is ${d.size} bytes, too big for a signature`);
  return readObjectBytes(img.path, d);
}

/** Sorted ids of the groups that hold at least one object (sylabs/sif select.go getGroupIDs). */
export function groupIds(img: IntegrityImage): number[] {
  return [...new Set(img.descriptors.map((x) => x.d.groupId).filter((g) => g !== 0))].sort((a, b) => a - b);
}

/** Every used descriptor in `group` (getGroupObjects: signature objects in the group too). */
export function groupObjects(img: IntegrityImage, group: number): RawDescriptor[] {
  return img.descriptors.filter((x) => x.d.groupId === group);
}

/** The smallest object id in `group`; ids in signed metadata are relative to it. */
export function groupMinId(img: IntegrityImage, group: number): number | undefined {
  const ids = groupObjects(img, group).map((x) => x.d.id);
  return ids.length ? Math.min(...ids) : undefined;
}
