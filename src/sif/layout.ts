/**
 * The SIF byte layout (Singularity Image Format, version 01), as Sylabs'
 * reference implementation (github.com/sylabs/sif, pkg/sif) writes it:
 * little-endian, packed structs.
 *
 *   0      global header, 128 bytes
 *   4096   48 descriptors of 585 bytes (28080 bytes)
 *   32176  data objects; partitions aligned to 4096
 *
 * Pure functions over Buffers; 64-bit fields are BigInt.
 */

export const HEADER_SIZE = 128;
export const DESCRIPTOR_SIZE = 585;
export const DESCRIPTORS_OFFSET = 4096;
export const DESCRIPTOR_CAPACITY = 48;
export const DATA_OFFSET = DESCRIPTORS_OFFSET + DESCRIPTOR_CAPACITY * DESCRIPTOR_SIZE; // 32176
export const PARTITION_ALIGNMENT = 4096;
export const LAUNCH_SCRIPT = '#!/usr/bin/env run-singularity\n';
export const MAGIC = 'SIF_MAGIC';
export const VERSION = '01';
/** Group ids carry this mask; apptainer puts objects in group 1. */
export const GROUP_MASK = 0xf0000000;
export const DEFAULT_GROUP = 1;

export const DataType = {
  Deffile: 0x4001,
  EnvVar: 0x4002,
  Labels: 0x4003,
  Partition: 0x4004,
  Signature: 0x4005,
  GenericJSON: 0x4006,
  Generic: 0x4007,
  CryptoMessage: 0x4008,
  SBOM: 0x4009,
  OCIRootIndex: 0x400a,
  OCIBlob: 0x400b,
} as const;

export const DATA_TYPE_NAMES: Record<number, string> = {
  0x4001: 'Def.FILE',
  0x4002: 'Env.Vars',
  0x4003: 'JSON.Labels',
  0x4004: 'FS',
  0x4005: 'Signature',
  0x4006: 'JSON.Generic',
  0x4007: 'Generic/Raw',
  0x4008: 'Cryptographic Message',
  0x4009: 'SBOM',
  0x400a: 'OCI.RootIndex',
  0x400b: 'OCI.Blob',
};

export const FsType = { Squashfs: 1, Ext3: 2, ImmutableObjects: 3, Raw: 4, EncryptedSquashfs: 5 } as const;
export const FS_TYPE_NAMES: Record<number, string> = { 1: 'Squashfs', 2: 'Ext3', 3: 'Data.Archive', 4: 'Raw', 5: 'Encrypted squashfs' };
export const PartType = { System: 1, PrimarySystem: 2, Data: 3, Overlay: 4 } as const;
export const PART_TYPE_NAMES: Record<number, string> = { 1: 'System', 2: '*System', 3: 'Data', 4: 'Overlay' };
export const HASH_TYPE_NAMES: Record<number, string> = { 1: 'SHA-256', 2: 'SHA-384', 3: 'SHA-512', 4: 'BLAKE2S', 5: 'BLAKE2B' };

/** Architecture codes: two ASCII digits and a NUL. */
export const ARCH_CODES: Record<string, string> = {
  unknown: '00', '386': '01', amd64: '02', arm: '03', arm64: '04', ppc64: '05', ppc64le: '06', mips: '07', mipsle: '08',
  mips64: '09', mips64le: '10', s390x: '11', riscv64: '12', loong64: '13',
};
const ARCH_BY_CODE: Record<string, string> = Object.fromEntries(Object.entries(ARCH_CODES).map(([k, v]) => [v, k]));

/** Node's process.arch to SIF's name. */
export function sifArchOf(nodeArch: string): string {
  return ({ x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle' } as Record<string, string>)[nodeArch] ?? 'unknown';
}

export interface Header {
  launchScript: string;
  magic: string;
  version: string;
  /** SIF arch name (amd64, arm64, ...) or 'unknown'. */
  arch: string;
  /** 16 raw bytes. */
  id: Buffer;
  createdAt: bigint;
  modifiedAt: bigint;
  descriptorsFree: bigint;
  descriptorsTotal: bigint;
  descriptorsOffset: bigint;
  descriptorsSize: bigint;
  dataOffset: bigint;
  dataSize: bigint;
}

export interface PartitionExtra {
  fsType: number;
  partType: number;
  arch: string;
}

export interface SignatureExtra {
  hashType: number;
  /** The signing entity's fingerprint, hex. */
  entity: string;
}

export interface Descriptor {
  dataType: number;
  used: boolean;
  id: number;
  /** Without the group mask; 0 = no group. */
  groupId: number;
  /** The object (or, with linksGroup, the group) this one refers to; 0 = none. */
  linkedId: number;
  /** True when linkedId names a group (a signature over group 1). */
  linksGroup: boolean;
  offset: bigint;
  size: bigint;
  sizeWithPadding: bigint;
  createdAt: bigint;
  modifiedAt: bigint;
  uid: bigint;
  gid: bigint;
  name: string;
  /** The raw 384 extra bytes. */
  extra: Buffer;
}

function cstr(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.subarray(0, nul < 0 ? buf.length : nul).toString('utf8');
}

function putStr(buf: Buffer, offset: number, len: number, s: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length > len) throw new RangeError(`"${s}" does not fit in ${len} bytes`);
  buf.fill(0, offset, offset + len);
  b.copy(buf, offset);
}

function archFromBytes(b: Buffer): string {
  return ARCH_BY_CODE[cstr(b)] ?? 'unknown';
}

function archBytes(arch: string): string {
  const code = ARCH_CODES[arch];
  if (!code) throw new RangeError(`unknown SIF architecture "${arch}"`);
  return code;
}

export function encodeHeader(h: Header): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  putStr(b, 0, 32, h.launchScript);
  putStr(b, 32, 10, h.magic);
  putStr(b, 42, 3, h.version);
  putStr(b, 45, 3, archBytes(h.arch));
  h.id.copy(b, 48, 0, 16);
  const i64 = [h.createdAt, h.modifiedAt, h.descriptorsFree, h.descriptorsTotal, h.descriptorsOffset, h.descriptorsSize, h.dataOffset, h.dataSize];
  i64.forEach((v, i) => b.writeBigInt64LE(v, 64 + i * 8));
  return b;
}

export function decodeHeader(b: Buffer): Header {
  if (b.length < HEADER_SIZE) throw new RangeError('header too short');
  const i64 = (i: number) => b.readBigInt64LE(64 + i * 8);
  return {
    launchScript: cstr(b.subarray(0, 32)),
    magic: cstr(b.subarray(32, 42)),
    version: cstr(b.subarray(42, 45)),
    arch: archFromBytes(b.subarray(45, 48)),
    id: Buffer.from(b.subarray(48, 64)),
    createdAt: i64(0),
    modifiedAt: i64(1),
    descriptorsFree: i64(2),
    descriptorsTotal: i64(3),
    descriptorsOffset: i64(4),
    descriptorsSize: i64(5),
    dataOffset: i64(6),
    dataSize: i64(7),
  };
}

export function encodeDescriptor(d: Descriptor): Buffer {
  const b = Buffer.alloc(DESCRIPTOR_SIZE);
  b.writeInt32LE(d.dataType, 0);
  b.writeUInt8(d.used ? 1 : 0, 4);
  b.writeUInt32LE(d.id, 5);
  b.writeUInt32LE(d.groupId === 0 ? 0 : (d.groupId | GROUP_MASK) >>> 0, 9);
  b.writeUInt32LE(d.linksGroup ? (d.linkedId | GROUP_MASK) >>> 0 : d.linkedId, 13);
  [d.offset, d.size, d.sizeWithPadding, d.createdAt, d.modifiedAt, d.uid, d.gid].forEach((v, i) => b.writeBigInt64LE(v, 17 + i * 8));
  putStr(b, 73, 128, d.name);
  d.extra.copy(b, 201, 0, Math.min(384, d.extra.length));
  return b;
}

export function decodeDescriptor(b: Buffer): Descriptor {
  const i64 = (i: number) => b.readBigInt64LE(17 + i * 8);
  const group = b.readUInt32LE(9);
  const link = b.readUInt32LE(13);
  return {
    dataType: b.readInt32LE(0),
    used: b.readUInt8(4) !== 0,
    id: b.readUInt32LE(5),
    groupId: group === 0 ? 0 : (group & ~GROUP_MASK) >>> 0,
    linkedId: (link & ~GROUP_MASK) >>> 0,
    linksGroup: link !== 0 && (link & GROUP_MASK) >>> 0 === GROUP_MASK,
    offset: i64(0),
    size: i64(1),
    sizeWithPadding: i64(2),
    createdAt: i64(3),
    modifiedAt: i64(4),
    uid: i64(5),
    gid: i64(6),
    name: cstr(b.subarray(73, 201)),
    extra: Buffer.from(b.subarray(201, 585)),
  };
}

export function encodePartitionExtra(p: PartitionExtra): Buffer {
  const b = Buffer.alloc(384);
  b.writeInt32LE(p.fsType, 0);
  b.writeInt32LE(p.partType, 4);
  putStr(b, 8, 3, archBytes(p.arch));
  return b;
}

export function decodePartitionExtra(extra: Buffer): PartitionExtra {
  return { fsType: extra.readInt32LE(0), partType: extra.readInt32LE(4), arch: archFromBytes(extra.subarray(8, 11)) };
}

export function decodeSignatureExtra(extra: Buffer): SignatureExtra {
  const ent = extra.subarray(4, 4 + 256);
  const end = ent.findLastIndex((x) => x !== 0) + 1;
  return { hashType: extra.readInt32LE(0), entity: ent.subarray(0, end).toString('hex').toUpperCase() };
}

/** The next multiple of `align` at or after `offset`. */
export function alignUp(offset: bigint, align: number): bigint {
  const a = BigInt(align);
  const r = offset % a;
  return r === 0n ? offset : offset + (a - r);
}

/** A UUID's text form from its 16 bytes. */
export function uuidString(id: Buffer): string {
  const h = id.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A SIF time (Unix seconds) as ISO 8601, or null when no date can hold it (a corrupt header). */
export function sifTime(seconds: bigint): string | null {
  const ms = Number(seconds) * 1000;
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : null;
}
