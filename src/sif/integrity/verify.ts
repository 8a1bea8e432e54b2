/**
 * Verifying SIF signatures as sylabs/sif pkg/integrity verify.go does, with
 * apptainer's choices on top (internal/pkg/signature/verify.go): by default
 * one task per object group; every signature linked to a checked group must
 * verify with a given key, and its metadata must match the header, every
 * descriptor and every object of the group. Unlike the reference, which
 * stops at the first mismatch, every mismatch is collected so a report can
 * name each tampered object by id.
 *
 * Legacy signatures (clear-signed "SIFHASH:\n<hex>" over object data only,
 * written by SingularityCE < 3.6) are recognised and reported as legacy; they
 * are checked only when asked (apptainer verify --legacy-insecure): then, as
 * apptainer does, the primary partition's signatures unless groups or
 * objects are named, or every grouped object with `all`.
 */
import type { KeyObject } from 'node:crypto';
import type * as openpgp from 'openpgp';
import { DataType, HASH_TYPE_NAMES, PartType, decodePartitionExtra, decodeSignatureExtra, sifTime } from '../layout.js';
import { clearsignedText, isClearsigned, verifyClearsigned } from './clearsign.js';
import { parseEnvelope, verifyEnvelope } from './dsse.js';
import { type IntegrityImage, type RawDescriptor, groupIds, groupMinId, groupObjects, hashObject, hashObjects, readObjectData } from './image.js';
import { DIGEST_ALGORITHMS, SIF_HASH_TYPES, decodeImageMetadata, descriptorIntegrityBytes, digestMatches, headerIntegrityBytes } from './metadata.js';
import { GO_ZERO_TIME } from './sign.js';

export interface VerifyKeys {
  /** PEM public keys (DSSE). */
  dsse: KeyObject[];
  /** OpenPGP public keys (clear-signed). */
  pgp: openpgp.Key[];
}

export interface VerifyOptions {
  groupIds?: number[];
  objectIds?: number[];
  /** Check legacy signatures (apptainer --legacy-insecure). */
  legacy?: boolean;
  /** With legacy: every grouped object (apptainer --all). */
  all?: boolean;
}

export type ProblemKind = 'header' | 'descriptor' | 'object' | 'signature' | 'unsigned' | 'not-covered' | 'not-found' | 'ungrouped' | 'no-key' | 'legacy';

export interface Problem {
  kind: ProblemKind;
  /** The object (or, for 'unsigned' with group set, the group) concerned. */
  id?: number;
  group?: number;
  message: string;
}

export type SignatureFormat = 'dsse' | 'pgp' | 'legacy' | 'unknown';

export interface SignatureReport {
  id: number;
  format: SignatureFormat;
  /** What the descriptor links the signature to. */
  linkedGroup: number | null;
  linkedObject: number | null;
  hash: string;
  /** PGP fingerprint (hex) or DSSE key fingerprints ("SHA256:..."), of the keys that verified it. */
  signers: { fingerprint: string; userId?: string }[];
  /** DSSE: the keyids the envelope names; PGP: the descriptor's fingerprint. */
  claimedBy: string[];
  /** PGP: the signature's creation time; DSSE: the object's time (null when stored as Go's zero time). */
  time: string | null;
  /** Object ids the signature covers (from its metadata). */
  covers: number[];
  /** Object ids whose descriptor and data matched. */
  verified: number[];
  checked: boolean;
  ok: boolean;
  problems: Problem[];
}

export interface VerifyReport {
  file: string;
  ok: boolean;
  groups: { group: number; ok: boolean; signatures: number[] }[];
  signatures: SignatureReport[];
  /** Problems not tied to one signature (an unsigned group, an object in no group). */
  problems: Problem[];
}

interface Classified {
  desc: RawDescriptor;
  data: Buffer;
  format: SignatureFormat;
}

async function classify(img: IntegrityImage, desc: RawDescriptor): Promise<Classified> {
  const data = await readObjectData(img, desc.d);
  if (parseEnvelope(data)) return { desc, data, format: 'dsse' };
  if (isClearsigned(data)) {
    const text = await clearsignedText(data);
    if (text === undefined) return { desc, data, format: 'unknown' };
    return { desc, data, format: text.startsWith('SIFHASH:\n') ? 'legacy' : 'pgp' };
  }
  return { desc, data, format: 'unknown' };
}

function timeOf(t: bigint): string | null {
  return t === GO_ZERO_TIME ? null : sifTime(t);
}

function baseReport(c: Classified): SignatureReport {
  const d = c.desc.d;
  const extra = decodeSignatureExtra(d.extra);
  return {
    id: d.id,
    format: c.format,
    linkedGroup: d.linksGroup ? d.linkedId : null,
    linkedObject: !d.linksGroup && d.linkedId ? d.linkedId : null,
    hash: HASH_TYPE_NAMES[extra.hashType] ?? `type ${extra.hashType}`,
    signers: [],
    claimedBy: extra.entity ? [extra.entity] : [],
    time: timeOf(d.createdAt),
    covers: [],
    verified: [],
    checked: false,
    ok: false,
    problems: [],
  };
}

/** Checks the signature's cryptography; returns the signed plaintext or records why not. */
async function checkCrypto(c: Classified, keys: VerifyKeys, r: SignatureReport): Promise<string | undefined> {
  const hashName = SIF_HASH_TYPES[decodeSignatureExtra(c.desc.d.extra).hashType];
  if (c.format === 'dsse') {
    const env = parseEnvelope(c.data)!;
    r.claimedBy = env.signatures.map((s) => String(s?.keyid ?? ''));
    if (keys.dsse.length === 0) {
      r.problems.push({ kind: 'no-key', id: r.id, message: `signature object ${r.id} is a DSSE signature: give its PEM public key with --key` });
      return undefined;
    }
    if (!hashName) {
      r.problems.push({ kind: 'signature', id: r.id, message: `signature object ${r.id}: unsupported hash type in its descriptor` });
      return undefined;
    }
    try {
      const res = verifyEnvelope(env, keys.dsse, DIGEST_ALGORITHMS[hashName]!);
      r.signers = res.acceptedKeys.map((fingerprint) => ({ fingerprint }));
      return res.payload.toString('utf8');
    } catch (err) {
      r.problems.push({ kind: 'signature', id: r.id, message: `signature object ${r.id} not valid: ${(err as Error).message}` });
      return undefined;
    }
  }
  if (c.format === 'pgp' || c.format === 'legacy') {
    if (keys.pgp.length === 0) {
      r.problems.push({ kind: 'no-key', id: r.id, message: `signature object ${r.id} is an OpenPGP signature: give the signer's armored public key with --key or --keyring` });
      return undefined;
    }
    try {
      const res = await verifyClearsigned(c.data, keys.pgp);
      r.signers = [{ fingerprint: res.fingerprint, ...(res.userId ? { userId: res.userId } : {}) }];
      r.time = res.created.toISOString();
      // verify.go: the descriptor's fingerprint must be the signing entity's.
      if (r.claimedBy[0] !== res.fingerprint) {
        r.problems.push({ kind: 'signature', id: r.id, message: `signature object ${r.id}: its descriptor names ${r.claimedBy[0] ?? 'no key'}, but it was signed by ${res.fingerprint}` });
        return undefined;
      }
      return res.plaintext;
    } catch (err) {
      r.problems.push({ kind: 'signature', id: r.id, message: `signature object ${r.id} not valid: ${(err as Error).message}` });
      return undefined;
    }
  }
  r.problems.push({ kind: 'signature', id: r.id, message: `signature object ${r.id}: format not recognised (neither a DSSE envelope nor an OpenPGP clear-signed message)` });
  return undefined;
}

/** A current-format signature over `group` (or, with `subset`, over these objects of it). */
async function verifyGroupSignature(img: IntegrityImage, c: Classified, keys: VerifyKeys, group: number, ods: RawDescriptor[], subset: boolean): Promise<SignatureReport> {
  const r = baseReport(c);
  r.checked = true;
  const text = await checkCrypto(c, keys, r);
  if (text === undefined) return r;
  let md;
  try {
    md = decodeImageMetadata(text);
  } catch (err) {
    r.problems.push({ kind: 'signature', id: r.id, message: `signature object ${r.id}: ${(err as Error).message}` });
    return r;
  }
  const minId = groupMinId(img, group)!;
  const signed = new Map(md.objects.map((o) => [minId + o.relativeId, o]));
  r.covers = [...signed.keys()].sort((a, b) => a - b);
  if (!digestMatches(md.header, headerIntegrityBytes(img.rawHeader))) r.problems.push({ kind: 'header', message: 'header integrity compromised (launch script, magic, version or image id changed)' });
  if (!subset) {
    for (const o of ods) if (!signed.has(o.d.id)) r.problems.push({ kind: 'not-covered', id: o.d.id, message: `object ${o.d.id} is in group ${group} but not covered by signature object ${r.id}` });
    for (const id of signed.keys()) if (!ods.some((o) => o.d.id === id)) r.problems.push({ kind: 'not-found', id, message: `object ${id} is signed by signature object ${r.id} but not in group ${group} any more` });
  }
  for (const o of ods) {
    const m = signed.get(o.d.id);
    if (!m) {
      if (subset) r.problems.push({ kind: 'not-covered', id: o.d.id, message: `object ${o.d.id} is not covered by signature object ${r.id}` });
      continue;
    }
    let good = true;
    if (!digestMatches(m.descriptorDigest, descriptorIntegrityBytes(o.raw, o.d.id - minId))) {
      r.problems.push({ kind: 'descriptor', id: o.d.id, message: `data object descriptor integrity compromised: ${o.d.id}` });
      good = false;
    }
    if (!(await hashObject(img, o.d, DIGEST_ALGORITHMS[m.objectDigest.name]!)).equals(m.objectDigest.value)) {
      r.problems.push({ kind: 'object', id: o.d.id, message: `data object integrity compromised: ${o.d.id}` });
      good = false;
    }
    if (good) r.verified.push(o.d.id);
  }
  r.ok = r.problems.length === 0;
  return r;
}

/** A legacy signature: its plaintext is the digest of the objects' data, nothing else. */
async function verifyLegacySignature(img: IntegrityImage, c: Classified, keys: VerifyKeys, ods: RawDescriptor[]): Promise<SignatureReport> {
  const r = baseReport(c);
  r.checked = true;
  const text = await checkCrypto(c, keys, r);
  if (text === undefined) return r;
  const hashName = SIF_HASH_TYPES[decodeSignatureExtra(c.desc.d.extra).hashType];
  const hex = text.replace(/^SIFHASH:\n/, '').replace(/\n$/, '');
  r.covers = ods.map((o) => o.d.id);
  if (!hashName || !/^[0-9a-f]+$/i.test(hex)) {
    r.problems.push({ kind: 'signature', id: r.id, message: `signature object ${r.id}: legacy digest malformed` });
    return r;
  }
  const actual = await hashObjects(img, ods.map((o) => o.d), DIGEST_ALGORITHMS[hashName]!);
  if (!actual.equals(Buffer.from(hex, 'hex'))) {
    for (const o of ods) r.problems.push({ kind: 'object', id: o.d.id, message: `data object integrity compromised: ${o.d.id} (legacy signatures cover data only, so the object cannot be told apart from others it was signed with)` });
  } else r.verified = r.covers;
  r.ok = r.problems.length === 0;
  return r;
}

/** Verifies an image's signatures; never throws on a bad signature (the report says), only on I/O. */
export async function verifySif(img: IntegrityImage, keys: VerifyKeys, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = { file: img.path, ok: false, groups: [], signatures: [], problems: [] };
  for (const x of img.descriptors) {
    if (x.d.dataType !== DataType.Signature && x.d.groupId === 0) report.problems.push({ kind: 'ungrouped', id: x.d.id, message: `object ${x.d.id} is in no object group, so no signature can cover it` });
  }
  const sigs = await Promise.all(img.descriptors.filter((x) => x.d.dataType === DataType.Signature).map((x) => classify(img, x)));
  const known = groupIds(img);
  const byId = (id: number) => img.descriptors.find((x) => x.d.id === id);

  if (opts.legacy) {
    // apptainer: the primary partition alone unless groups/objects are named; --all: every grouped object.
    let objectIds = opts.objectIds ?? [];
    if (opts.all) objectIds = img.descriptors.filter((x) => x.d.dataType !== DataType.Signature && x.d.groupId !== 0).map((x) => x.d.id);
    else if (!opts.groupIds?.length && !objectIds.length) {
      const prim = img.descriptors.find((x) => x.d.dataType === DataType.Partition && decodePartitionExtra(x.d.extra).partType === PartType.PrimarySystem);
      if (!prim) report.problems.push({ kind: 'not-found', message: 'no primary system partition to check legacy signatures of (name objects with --sif-id or --all)' });
      else objectIds = [prim.d.id];
    }
    for (const g of opts.groupIds ?? []) {
      const found = sigs.filter((s) => s.format === 'legacy' && s.desc.d.linksGroup && s.desc.d.linkedId === g);
      if (!found.length) report.problems.push({ kind: 'unsigned', group: g, message: `group ${g}: no legacy signature` });
      for (const s of found) report.signatures.push(await verifyLegacySignature(img, s, keys, groupObjects(img, g)));
      report.groups.push({ group: g, ok: found.length > 0 && report.signatures.filter((r) => found.some((s) => s.desc.d.id === r.id)).every((r) => r.ok), signatures: found.map((s) => s.desc.d.id) });
    }
    for (const id of objectIds) {
      const o = byId(id);
      if (!o) {
        report.problems.push({ kind: 'not-found', id, message: `no object ${id} in this image` });
        continue;
      }
      const found = sigs.filter((s) => s.format === 'legacy' && !s.desc.d.linksGroup && s.desc.d.linkedId === id);
      if (!found.length) report.problems.push({ kind: 'unsigned', id, message: `object ${id}: no legacy signature` });
      for (const s of found) report.signatures.push(await verifyLegacySignature(img, s, keys, [o]));
    }
  } else {
    const tasks: { group: number; ods: RawDescriptor[]; subset: boolean }[] = [];
    for (const g of opts.groupIds ?? []) {
      if (!known.includes(g)) report.problems.push({ kind: 'not-found', group: g, message: `no object group ${g} in this image (groups: ${known.join(', ') || 'none'})` });
      else tasks.push({ group: g, ods: groupObjects(img, g), subset: false });
    }
    for (const id of opts.objectIds ?? []) {
      const o = byId(id);
      if (!o || o.d.groupId === 0) report.problems.push({ kind: 'not-found', id, message: o ? `object ${id} is in no group` : `no object ${id} in this image` });
      else tasks.push({ group: o.d.groupId, ods: [o], subset: true });
    }
    if (!opts.groupIds?.length && !opts.objectIds?.length) for (const g of known) tasks.push({ group: g, ods: groupObjects(img, g), subset: false });
    if (tasks.length === 0 && report.problems.length === 0) report.problems.push({ kind: 'unsigned', message: 'the image holds no object group, so nothing is signed' });
    for (const t of tasks) {
      const linked = sigs.filter((s) => s.desc.d.linksGroup && s.desc.d.linkedId === t.group);
      const current = linked.filter((s) => s.format !== 'legacy');
      const legacy = sigs.filter((s) => s.format === 'legacy' && ((s.desc.d.linksGroup && s.desc.d.linkedId === t.group) || (!s.desc.d.linksGroup && byId(s.desc.d.linkedId)?.d.groupId === t.group)));
      if (current.length === 0) {
        const hint = legacy.length ? ` (it has legacy signature object${legacy.length > 1 ? 's' : ''} ${legacy.map((s) => s.desc.d.id).join(', ')}: pass --legacy-insecure to check ${legacy.length > 1 ? 'them' : 'it'})` : '';
        report.problems.push({ kind: legacy.length ? 'legacy' : 'unsigned', group: t.group, message: `group ${t.group} is not signed${hint}` });
        for (const s of legacy) {
          if (report.signatures.some((r) => r.id === s.desc.d.id)) continue;
          const r = baseReport(s);
          r.linkedObject = s.desc.d.linksGroup ? null : s.desc.d.linkedId;
          r.problems.push({ kind: 'legacy', id: r.id, message: `signature object ${r.id} is a legacy signature (data only; header and descriptors unprotected): not checked without --legacy-insecure` });
          report.signatures.push(r);
        }
        report.groups.push({ group: t.group, ok: false, signatures: legacy.map((s) => s.desc.d.id) });
        continue;
      }
      const results: SignatureReport[] = [];
      for (const s of current) results.push(await verifyGroupSignature(img, s, keys, t.group, t.ods, t.subset));
      report.signatures.push(...results);
      report.groups.push({ group: t.group, ok: results.every((r) => r.ok), signatures: results.map((r) => r.id) });
    }
  }
  report.ok = report.problems.length === 0 && report.signatures.length > 0 && report.signatures.every((s) => s.ok);
  return report;
}
