/**
 * Writing a SIF. Small objects (definition file, JSON metadata) are queued;
 * the primary partition is then written at its 4096-aligned offset — either
 * streamed in by us, or written there directly by `mksquashfs -offset` —
 * and finish() writes the objects, the descriptor table and the header into
 * the space before it, then renames the file into place. The partition is
 * never held in memory.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { refuseOverwrite, sweepStaleTemps, tempPathFor, writeFailure } from '../util/atomic-write.js';
import {
  DATA_OFFSET,
  DEFAULT_GROUP,
  DESCRIPTORS_OFFSET,
  DESCRIPTOR_CAPACITY,
  DESCRIPTOR_SIZE,
  DataType,
  type Descriptor,
  FsType,
  LAUNCH_SCRIPT,
  MAGIC,
  PARTITION_ALIGNMENT,
  PartType,
  VERSION,
  alignUp,
  encodeDescriptor,
  encodeHeader,
  encodePartitionExtra,
} from './layout.js';

export interface SifWriterOptions {
  force?: boolean;
  /** Creation time (tests pass a fixed one). */
  now?: Date;
  /** 16-byte image id (default: a random UUID). */
  id?: Buffer;
}

export interface ObjectOptions {
  name?: string;
  /** 0 for none; default group 1, as apptainer does. */
  groupId?: number;
  linkedId?: number;
  extra?: Buffer;
}

interface Pending {
  dataType: number;
  data: Buffer;
  opts: ObjectOptions;
}

export class SifWriter {
  readonly target: string;
  readonly tmp: string;
  private readonly objects: Pending[] = [];
  private partition?: { size: bigint; arch: string; name: string; fsType: number };
  private readonly time: bigint;
  private readonly id: Buffer;
  private constructor(target: string, opts: SifWriterOptions) {
    this.target = path.resolve(target);
    this.tmp = `${tempPathFor(this.target)}.sif`;
    this.time = BigInt(Math.floor((opts.now ?? new Date()).getTime() / 1000));
    this.id = opts.id ?? Buffer.from(randomUUID().replace(/-/g, ''), 'hex');
  }

  /** Starts a new image at `target` (written to a temp file beside it until finish()). */
  static async create(target: string, opts: SifWriterOptions = {}): Promise<SifWriter> {
    await refuseOverwrite(target, { force: !!opts.force });
    await sweepStaleTemps(target);
    const w = new SifWriter(target, opts);
    await fs.writeFile(w.tmp, Buffer.alloc(0), { flag: 'wx' }).catch((err: unknown) => {
      throw writeFailure(w.target, err);
    });
    return w;
  }

  /** Queues a small object; it is written by finish(). Add them all before the partition. */
  addObject(dataType: number, data: Buffer, opts: ObjectOptions = {}): void {
    if (this.partition) throw new Error('SifWriter: add objects before the partition');
    if (this.objects.length + 1 >= DESCRIPTOR_CAPACITY) throw new Error('SifWriter: no free descriptor left');
    this.objects.push({ dataType, data, opts });
  }

  /** Where the partition goes: after the queued objects, on a 4096-byte boundary. */
  partitionOffset(): bigint {
    const end = this.objects.reduce((off, o) => off + BigInt(o.data.length), BigInt(DATA_OFFSET));
    return alignUp(end, PARTITION_ALIGNMENT);
  }

  /** Streams a squashfs into place. Memory stays flat whatever its size. */
  async writePartition(source: Readable, meta: { arch: string; name?: string; fsType?: number }): Promise<bigint> {
    const offset = this.partitionOffset();
    let size = 0n;
    source.on('data', (chunk: Buffer) => {
      size += BigInt(chunk.length);
    });
    await pipeline(source, createWriteStream(this.tmp, { flags: 'r+', start: Number(offset) })).catch((err: unknown) => {
      throw (err as NodeJS.ErrnoException)?.code ? writeFailure(this.target, err) : err;
    });
    this.partition = { size, arch: meta.arch, name: meta.name ?? 'rootfs.squashfs', fsType: meta.fsType ?? FsType.Squashfs };
    return size;
  }

  /** Records a partition another program wrote at partitionOffset() (mksquashfs -offset). */
  async adoptPartition(meta: { arch: string; name?: string; fsType?: number }): Promise<bigint> {
    const offset = this.partitionOffset();
    const { size } = await fs.stat(this.tmp);
    if (BigInt(size) <= offset) throw new Error(`SifWriter: nothing was written at offset ${offset}`);
    this.partition = { size: BigInt(size) - offset, arch: meta.arch, name: meta.name ?? 'rootfs.squashfs', fsType: meta.fsType ?? FsType.Squashfs };
    return this.partition.size;
  }

  /** Writes objects, descriptors and header, syncs, and renames the image into place. */
  async finish(): Promise<{ path: string; size: number }> {
    try {
      return await this.finishWrite();
    } catch (err) {
      throw (err as NodeJS.ErrnoException)?.code ? writeFailure(this.target, err) : err;
    }
  }

  private async finishWrite(): Promise<{ path: string; size: number }> {
    const handle = await fs.open(this.tmp, 'r+');
    try {
      const descriptors: Descriptor[] = [];
      let offset = BigInt(DATA_OFFSET);
      const base = { used: true, linkedId: 0, linksGroup: false, createdAt: this.time, modifiedAt: this.time, uid: 0n, gid: 0n };
      for (const o of this.objects) {
        await handle.write(o.data, 0, o.data.length, Number(offset));
        descriptors.push({
          ...base,
          dataType: o.dataType,
          id: descriptors.length + 1,
          groupId: o.opts.groupId ?? DEFAULT_GROUP,
          linkedId: o.opts.linkedId ?? 0,
          offset,
          size: BigInt(o.data.length),
          sizeWithPadding: BigInt(o.data.length),
          name: o.opts.name ?? '',
          extra: o.opts.extra ?? Buffer.alloc(384),
        });
        offset += BigInt(o.data.length);
      }
      let arch = 'unknown';
      if (this.partition) {
        const pOff = this.partitionOffset();
        descriptors.push({
          ...base,
          dataType: DataType.Partition,
          id: descriptors.length + 1,
          groupId: DEFAULT_GROUP,
          offset: pOff,
          size: this.partition.size,
          sizeWithPadding: pOff - offset + this.partition.size,
          name: this.partition.name,
          extra: encodePartitionExtra({ fsType: this.partition.fsType, partType: PartType.PrimarySystem, arch: this.partition.arch }),
        });
        offset = pOff + this.partition.size;
        arch = this.partition.arch;
      }
      const table = Buffer.alloc(DESCRIPTOR_CAPACITY * DESCRIPTOR_SIZE);
      descriptors.forEach((d, i) => encodeDescriptor(d).copy(table, i * DESCRIPTOR_SIZE));
      await handle.write(table, 0, table.length, DESCRIPTORS_OFFSET);
      const header = encodeHeader({
        launchScript: LAUNCH_SCRIPT,
        magic: MAGIC,
        version: VERSION,
        arch,
        id: this.id,
        createdAt: this.time,
        modifiedAt: this.time,
        descriptorsFree: BigInt(DESCRIPTOR_CAPACITY - descriptors.length),
        descriptorsTotal: BigInt(DESCRIPTOR_CAPACITY),
        descriptorsOffset: BigInt(DESCRIPTORS_OFFSET),
        descriptorsSize: BigInt(DESCRIPTOR_CAPACITY * DESCRIPTOR_SIZE),
        dataOffset: BigInt(DATA_OFFSET),
        dataSize: offset - BigInt(DATA_OFFSET),
      });
      await handle.write(header, 0, header.length, 0);
      await handle.truncate(Number(offset));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(this.tmp, this.target);
    const { size } = await fs.stat(this.target);
    return { path: this.target, size };
  }

  /** Removes the temp file: nothing half-written is left behind. */
  async abort(): Promise<void> {
    await fs.rm(this.tmp, { force: true });
  }
}
