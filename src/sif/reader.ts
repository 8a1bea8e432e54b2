/**
 * Reading a SIF: only the header and the descriptor table are read up
 * front; objects are read on demand (small ones into memory, the partition
 * by offset for unsquashfs). Works for images apptainer wrote as well as ours.
 */
import { promises as fs } from 'node:fs';
import { InputError } from '../errors.js';
import {
  DESCRIPTOR_SIZE,
  DataType,
  type Descriptor,
  HEADER_SIZE,
  type Header,
  MAGIC,
  PartType,
  type PartitionExtra,
  decodeDescriptor,
  decodeHeader,
  decodePartitionExtra,
} from './layout.js';

export interface SifImage {
  path: string;
  fileSize: number;
  header: Header;
  /** Used descriptors, in slot order. */
  descriptors: Descriptor[];
}

const NOT_SIF_HINT = 'give the path of a .sif image (apptainer build, sifpack build or sifpack convert make them)';

/** Reads and checks the header and descriptors. Throws InputError naming the file and what is wrong. */
export async function readSif(file: string): Promise<SifImage> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    throw new InputError(`${file}: cannot open: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(Math.min(size, HEADER_SIZE));
    await handle.read(head, 0, head.length, 0);
    if (head.length < HEADER_SIZE) {
      if (head.subarray(32, 41).toString('latin1') === MAGIC) throw new InputError(`${file}: truncated SIF: ${size} bytes, shorter than the ${HEADER_SIZE}-byte header`);
      throw new InputError(`${file}: not a SIF image (${size} bytes, no SIF_MAGIC)`, { hint: NOT_SIF_HINT });
    }
    const header = decodeHeader(head);
    if (header.magic !== MAGIC) throw new InputError(`${file}: not a SIF image (no SIF_MAGIC in its header)`, { hint: NOT_SIF_HINT });
    if (header.version !== '01') throw new InputError(`${file}: SIF version "${header.version}" is not supported (only 01)`);
    const total = Number(header.descriptorsTotal);
    const dOff = Number(header.descriptorsOffset);
    if (total < 0 || total > 1_000_000 || dOff < HEADER_SIZE) throw new InputError(`${file}: corrupt SIF header (descriptor table at ${dOff}, ${total} descriptors)`);
    const tableEnd = dOff + total * DESCRIPTOR_SIZE;
    if (size < tableEnd) throw new InputError(`${file}: truncated SIF: ${size} bytes, but its descriptor table ends at ${tableEnd}`);
    const table = Buffer.alloc(total * DESCRIPTOR_SIZE);
    await handle.read(table, 0, table.length, dOff);
    const descriptors: Descriptor[] = [];
    for (let i = 0; i < total; i++) {
      const d = decodeDescriptor(table.subarray(i * DESCRIPTOR_SIZE, (i + 1) * DESCRIPTOR_SIZE));
      if (!d.used) continue;
      if (d.offset < 0n || d.size < 0n) {
        throw new InputError(`${file}: corrupt SIF: object ${d.id} (${d.name || 'unnamed'}) has offset ${d.offset} and size ${d.size}`);
      }
      const end = d.offset + d.size;
      if (end > BigInt(size)) {
        throw new InputError(`${file}: truncated SIF: object ${d.id} (${d.name || 'unnamed'}) ends at byte ${end}, but the file has ${size}`);
      }
      descriptors.push(d);
    }
    return { path: file, fileSize: size, header, descriptors };
  } finally {
    await handle.close();
  }
}

/** The partition attributes of a partition descriptor. */
export function partitionOf(d: Descriptor): PartitionExtra | undefined {
  return d.dataType === DataType.Partition ? decodePartitionExtra(d.extra) : undefined;
}

/** The one primary system partition; an image without one cannot run. */
export function requirePrimaryPartition(img: SifImage): { descriptor: Descriptor; partition: PartitionExtra } {
  const prim = img.descriptors.filter((d) => partitionOf(d)?.partType === PartType.PrimarySystem);
  if (prim.length === 0) throw new InputError(`${img.path}: no primary system partition: this SIF holds no runnable root filesystem`, { hint: 'it may be a data-only or empty SIF' });
  if (prim.length > 1) throw new InputError(`${img.path}: ${prim.length} primary system partitions (a SIF may have one)`);
  return { descriptor: prim[0]!, partition: partitionOf(prim[0]!)! };
}

/** An object's bytes, read whole: the callers bound its size first. */
export async function readObjectBytes(file: string, d: Descriptor): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(Number(d.size));
    await handle.read(buf, 0, buf.length, Number(d.offset));
    return buf;
  } finally {
    await handle.close();
  }
}

/** An object's bytes. Meant for small objects (def file, JSON, signatures). */
export async function readObject(img: SifImage, d: Descriptor, maxBytes = 64 * 1024 * 1024): Promise<Buffer> {
  if (d.size > BigInt(maxBytes)) throw new InputError(`${img.path}: object ${d.id} is ${d.size} bytes, too big to read whole`);
  return readObjectBytes(img.path, d);
}

/** The first descriptor of `dataType` named `name` (any name when omitted). */
export function findObject(img: SifImage, dataType: number, name?: string): Descriptor | undefined {
  return img.descriptors.find((d) => d.dataType === dataType && (name === undefined || d.name === name));
}

/**
 * Labels from the inspect-metadata.json object apptainer (and sifpack)
 * writes, without unpacking the squashfs. Undefined when there is none.
 */
export async function readMetadataLabels(img: SifImage): Promise<Record<string, string> | undefined> {
  const d = findObject(img, DataType.GenericJSON, 'inspect-metadata.json');
  if (!d) return undefined;
  try {
    const meta = JSON.parse((await readObject(img, d)).toString('utf8')) as { data?: { attributes?: { labels?: Record<string, unknown> } } };
    const labels = meta.data?.attributes?.labels;
    if (!labels) return undefined;
    return Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)]));
  } catch {
    return undefined;
  }
}
