/**
 * Signing a SIF in place, as sylabs/sif pkg/integrity sign.go does it:
 * by default one signature per object group, covering the header, the
 * group's descriptors and its data; each signature is a new Signature
 * object in no group, linked to the group (pkg/sif add.go AddObject:
 * first free descriptor slot, data appended after the last object,
 * header's free count, data size and modified time updated).
 *
 * Atomic: the image is copied next to itself (reflinked where the file
 * system can), signed there, synced and renamed over the original; a crash
 * leaves the original untouched.
 */
import type { KeyObject } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import type * as openpgp from 'openpgp';
import { EXIT, InputError, RuntimeFailure, SifpackError } from '../../errors.js';
import { tempPathFor } from '../../util/atomic-write.js';
import { DESCRIPTOR_SIZE, DataType, GROUP_MASK } from '../layout.js';
import { clearsign } from './clearsign.js';
import { signEnvelope } from './dsse.js';
import { type IntegrityImage, type RawDescriptor, groupIds, groupObjects, loadIntegrityImage } from './image.js';
import { SIF_HASH_TYPE_OF, encodeImageMetadata, imageMetadata } from './metadata.js';

/** Go's time.Time{}.Unix(): what sylabs/sif stores for a deterministic time. */
export const GO_ZERO_TIME = -62135596800n;

export type SigningKey = { kind: 'pgp'; key: openpgp.PrivateKey } | { kind: 'dsse'; keys: KeyObject[] };

export interface SignOptions {
  /** Sign these groups, each as a whole (apptainer sign --group-id). */
  groupIds?: number[];
  /** Sign these objects (apptainer sign --sif-id); one signature per group they fall in. */
  objectIds?: number[];
  /** Signing time (descriptor times, header modified time, OpenPGP signature time). Default: now. */
  time?: Date;
  /** Zero descriptor/header times, as OptSignDeterministic (the reference images use it). */
  deterministic?: boolean;
  /** OpenPGP: add go-crypto's random salt notation (default true, as apptainer does). */
  pgpSalt?: boolean;
  /** Ctrl-C: stop before the rename; the original stays as it was. */
  signal?: AbortSignal;
}

export interface SignedGroup {
  signatureId: number;
  group: number;
  objects: number[];
}

interface Plan {
  group: number;
  /** undefined: every object in the group, looked up when signing. */
  objectIds?: number[];
}

function plan(img: IntegrityImage, opts: SignOptions): Plan[] {
  const plans: Plan[] = [];
  const known = groupIds(img);
  for (const g of opts.groupIds ?? []) {
    if (!known.includes(g)) throw new InputError(`${img.path}: --group-id ${g}: no object group ${g} in this image (groups: ${known.join(', ') || 'none'})`);
    plans.push({ group: g });
  }
  if (opts.objectIds?.length) {
    const byGroup = new Map<number, number[]>();
    for (const id of opts.objectIds) {
      const d = img.descriptors.find((x) => x.d.id === id);
      if (!d) throw new InputError(`${img.path}: --sif-id ${id}: no object ${id} in this image (objects: ${img.descriptors.map((x) => x.d.id).join(', ')})`);
      if (d.d.groupId === 0) throw new InputError(`${img.path}: --sif-id ${id}: object ${id} is in no group, and only grouped objects can be signed`);
      byGroup.set(d.d.groupId, [...(byGroup.get(d.d.groupId) ?? []), id]);
    }
    for (const g of [...byGroup.keys()].sort((a, b) => a - b)) plans.push({ group: g, objectIds: byGroup.get(g)! });
  }
  if (plans.length === 0) {
    if (known.length === 0) throw new InputError(`${img.path}: nothing to sign: the image holds no object group`);
    for (const g of known) plans.push({ group: g });
  }
  return plans;
}

function isDeterministic(img: IntegrityImage): boolean {
  return img.header.id.every((b) => b === 0) && img.header.createdAt === GO_ZERO_TIME && img.header.modifiedAt === GO_ZERO_TIME;
}

async function signatureData(img: IntegrityImage, p: Plan, key: SigningKey, opts: SignOptions): Promise<{ data: Buffer; objects: RawDescriptor[] }> {
  const objects = p.objectIds ? p.objectIds.map((id) => img.descriptors.find((x) => x.d.id === id)!) : groupObjects(img, p.group);
  const md = Buffer.from(encodeImageMetadata(await imageMetadata(img, p.group, objects, 'sha256')), 'utf8');
  if (key.kind === 'dsse') return { data: Buffer.from(signEnvelope(md, key.keys, 'sha256'), 'utf8'), objects };
  const text = await clearsign(md.toString('utf8'), key.key, opts.time ?? new Date(), opts.pgpSalt ?? true);
  return { data: Buffer.from(text, 'utf8'), objects };
}

/** Appends one signature object to the open image file (pkg/sif create.go writeDataObject). */
async function appendSignature(handle: fs.FileHandle, img: IntegrityImage, group: number, data: Buffer, fingerprint: Buffer | undefined, t: bigint, file: string): Promise<number> {
  const total = Number(img.header.descriptorsTotal);
  let slot = -1;
  for (let i = 0; i < total; i++) {
    if (img.rawTable[i * DESCRIPTOR_SIZE + 4] === 0) {
      slot = i;
      break;
    }
  }
  if (slot < 0) throw new InputError(`${file}: no free descriptor slot left for a signature (all ${total} used)`);
  let dataEnd = img.header.dataOffset;
  for (const x of img.descriptors) if (x.d.offset + x.d.size > dataEnd) dataEnd = x.d.offset + x.d.size;
  const id = slot + 1;
  const d = Buffer.alloc(DESCRIPTOR_SIZE);
  d.writeInt32LE(DataType.Signature, 0);
  d.writeUInt8(1, 4);
  d.writeUInt32LE(id, 5);
  d.writeUInt32LE(GROUP_MASK >>> 0, 9); // OptNoGroup: group 0, stored with the mask
  d.writeUInt32LE((group | GROUP_MASK) >>> 0, 13); // OptLinkedGroupID
  d.writeBigInt64LE(dataEnd, 17);
  d.writeBigInt64LE(BigInt(data.length), 25);
  d.writeBigInt64LE(BigInt(data.length), 33);
  d.writeBigInt64LE(t, 41);
  d.writeBigInt64LE(t, 49);
  d.writeInt32LE(SIF_HASH_TYPE_OF.sha256!, 201); // signature extra: hash type, then the entity's fingerprint
  fingerprint?.copy(d, 205);
  await handle.write(data, 0, data.length, Number(dataEnd));
  await handle.write(d, 0, d.length, Number(img.header.descriptorsOffset) + slot * DESCRIPTOR_SIZE);
  const h = Buffer.alloc(8);
  h.writeBigInt64LE(t);
  await handle.write(h, 0, 8, 72); // modified
  h.writeBigInt64LE(img.header.descriptorsFree - 1n);
  await handle.write(h, 0, 8, 80);
  h.writeBigInt64LE(dataEnd - img.header.dataOffset + BigInt(data.length));
  await handle.write(h, 0, 8, 120); // data size
  return id;
}

/** Signs `file` in place (atomically). Returns what each new signature object covers. */
export async function signSif(file: string, key: SigningKey, opts: SignOptions = {}): Promise<SignedGroup[]> {
  const original = await loadIntegrityImage(file);
  const plans = plan(original, opts);
  const fingerprint = key.kind === 'pgp' ? Buffer.from(key.key.getFingerprint(), 'hex') : undefined;
  const tmp = tempPathFor(file);
  const st = await fs.stat(file);
  try {
    await fs.copyFile(file, tmp, constants.COPYFILE_FICLONE);
    await fs.chmod(tmp, st.mode & 0o7777);
    const out: SignedGroup[] = [];
    const stopIfAborted = () => {
      if (opts.signal?.aborted) throw new SifpackError(`signing interrupted; ${file} is unchanged`, EXIT.interrupted);
    };
    for (const p of plans) {
      stopIfAborted();
      const img = await loadIntegrityImage(tmp);
      img.path = tmp;
      const t = opts.deterministic || (opts.time === undefined && isDeterministic(img)) ? GO_ZERO_TIME : BigInt(Math.floor((opts.time ?? new Date()).getTime() / 1000));
      const { data, objects } = await signatureData(img, p, key, opts);
      const handle = await fs.open(tmp, 'r+');
      try {
        const id = await appendSignature(handle, img, p.group, data, fingerprint, t, file);
        await handle.sync();
        out.push({ signatureId: id, group: p.group, objects: objects.map((o) => o.d.id) });
      } finally {
        await handle.close();
      }
    }
    stopIfAborted();
    await fs.rename(tmp, file);
    return out;
  } catch (err) {
    await fs.rm(tmp, { force: true });
    if (err instanceof SifpackError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code) throw new RuntimeFailure(`cannot sign ${file}: ${e.message}`, { cause: err });
    throw err;
  }
}
