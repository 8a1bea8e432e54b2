/**
 * The signed image metadata, as sylabs/sif pkg/integrity (metadata.go,
 * digest.go) defines it. Format (Go's json.Marshal, no spaces):
 *
 *   {"version":1,"header":{"digest":"sha256:<hex>"},
 *    "objects":[{"relativeId":0,"descriptorDigest":"sha256:<hex>","objectDigest":"sha256:<hex>"}, ...]}
 *
 * header digest: launch script (32) + magic (10) + version (3) + image id (16)
 *   — pkg/sif sif.go header.GetIntegrityReader; arch, times, sizes are not covered.
 * descriptor digest: data type, used, id relative to the group's smallest id,
 *   linked id, size, created, uid, gid, name (128), extra (384)
 *   — pkg/sif descriptor.go GetIntegrityReader; offset and modified time are not covered.
 * object digest: the object's data.
 */
import { createHash } from 'node:crypto';
import { type IntegrityImage, type RawDescriptor, groupMinId, hashObject } from './image.js';

/** Digest algorithms the format names (digest.go supportedDigestAlgorithms) → node's names. */
export const DIGEST_ALGORITHMS: Record<string, string> = {
  sha224: 'sha224',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  sha512_224: 'sha512-224',
  sha512_256: 'sha512-256',
};

/** The descriptor's hash type field (pkg/sif sif.go hashType) → digest name. */
export const SIF_HASH_TYPES: Record<number, string> = { 1: 'sha256', 2: 'sha384', 3: 'sha512' };
export const SIF_HASH_TYPE_OF: Record<string, number> = { sha256: 1, sha384: 2, sha512: 3 };

export interface ObjectMetadata {
  relativeId: number;
  descriptorDigest: string;
  objectDigest: string;
}

export interface ImageMetadata {
  version: 1;
  header: { digest: string };
  objects: ObjectMetadata[];
}

export function headerIntegrityBytes(rawHeader: Buffer): Buffer {
  return Buffer.concat([rawHeader.subarray(0, 32), rawHeader.subarray(32, 42), rawHeader.subarray(42, 45), rawHeader.subarray(48, 64)]);
}

export function descriptorIntegrityBytes(raw: Buffer, relativeId: number): Buffer {
  const rel = Buffer.alloc(4);
  rel.writeUInt32LE(relativeId >>> 0);
  return Buffer.concat([
    raw.subarray(0, 5), // data type, used
    rel,
    raw.subarray(13, 17), // linked id (with its group mask)
    raw.subarray(25, 33), // size
    raw.subarray(41, 49), // created
    raw.subarray(57, 73), // uid, gid
    raw.subarray(73, 585), // name, extra
  ]);
}

export function formatDigest(name: string, value: Buffer): string {
  return `${name}:${value.toString('hex')}`;
}

function digestOf(name: string, data: Buffer): string {
  return formatDigest(name, createHash(DIGEST_ALGORITHMS[name]!).update(data).digest());
}

export interface ParsedDigest {
  name: string;
  value: Buffer;
}

/** Parses "sha256:<hex>"; undefined when malformed or unsupported (digest.go UnmarshalJSON). */
export function parseDigest(s: unknown): ParsedDigest | undefined {
  if (typeof s !== 'string') return undefined;
  const parts = s.split(':');
  if (parts.length !== 2) return undefined;
  const [name, hex] = parts as [string, string];
  const alg = DIGEST_ALGORITHMS[name];
  if (!alg || !/^([0-9a-f]{2})*$/i.test(hex)) return undefined;
  const value = Buffer.from(hex, 'hex');
  if (value.length !== createHash(alg).digest().length) return undefined;
  return { name, value };
}

export function digestMatches(d: ParsedDigest, data: Buffer): boolean {
  return createHash(DIGEST_ALGORITHMS[d.name]!).update(data).digest().equals(d.value);
}

/** The metadata a signature over `objects` (all in one group) carries. */
export async function imageMetadata(img: IntegrityImage, group: number, objects: RawDescriptor[], digest = 'sha256'): Promise<ImageMetadata> {
  const minId = groupMinId(img, group);
  if (minId === undefined) throw new RangeError(`group ${group} holds no objects`);
  const sorted = [...objects].sort((a, b) => a.d.id - b.d.id);
  const out: ObjectMetadata[] = [];
  for (const o of sorted) {
    const rel = o.d.id - minId;
    out.push({
      relativeId: rel,
      descriptorDigest: digestOf(digest, descriptorIntegrityBytes(o.raw, rel)),
      objectDigest: formatDigest(digest, await hashObject(img, o.d, DIGEST_ALGORITHMS[digest]!)),
    });
  }
  return { version: 1, header: { digest: digestOf(digest, headerIntegrityBytes(img.rawHeader)) }, objects: out };
}

/** Go's json.Marshal of the struct: field order as declared, no spaces. */
export function encodeImageMetadata(m: ImageMetadata): string {
  return JSON.stringify({ version: m.version, header: { digest: m.header.digest }, objects: m.objects.map((o) => ({ relativeId: o.relativeId, descriptorDigest: o.descriptorDigest, objectDigest: o.objectDigest })) });
}

export interface DecodedMetadata {
  header: ParsedDigest;
  objects: { relativeId: number; descriptorDigest: ParsedDigest; objectDigest: ParsedDigest }[];
}

/** Parses signed metadata; throws Error with what is malformed. */
export function decodeImageMetadata(text: string): DecodedMetadata {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error('signed metadata is not JSON');
  }
  const m = v as { version?: unknown; header?: { digest?: unknown }; objects?: unknown };
  if (m.version !== 1) throw new Error(`signed metadata version ${JSON.stringify(m.version)} is not supported (only 1)`);
  const header = parseDigest(m.header?.digest);
  if (!header) throw new Error('signed metadata: header digest malformed');
  if (!Array.isArray(m.objects)) throw new Error('signed metadata: objects missing');
  const objects = m.objects.map((o: { relativeId?: unknown; descriptorDigest?: unknown; objectDigest?: unknown }) => {
    const dd = parseDigest(o.descriptorDigest);
    const od = parseDigest(o.objectDigest);
    if (typeof o.relativeId !== 'number' || !Number.isInteger(o.relativeId) || o.relativeId < 0 || !dd || !od) throw new Error('signed metadata: object entry malformed');
    return { relativeId: o.relativeId, descriptorDigest: dd, objectDigest: od };
  });
  return { header, objects };
}
