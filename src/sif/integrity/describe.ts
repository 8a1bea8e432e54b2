/**
 * What a SIF's signature objects claim, read without any key (for
 * `inspect`): format, what they link to, who they name as signer, when, and
 * which objects their (unverified) metadata covers. Nothing here is trusted;
 * `verify` checks it.
 */
import { DataType, HASH_TYPE_NAMES, decodeSignatureExtra, sifTime } from '../layout.js';
import type * as openpgp from 'openpgp';
import { loadOpenpgp } from './clearsign.js';
import { parseEnvelope } from './dsse.js';
import { type IntegrityImage, groupMinId, readObjectData } from './image.js';
import { decodeImageMetadata } from './metadata.js';
import { GO_ZERO_TIME } from './sign.js';

export interface SignatureClaim {
  id: number;
  format: 'dsse' | 'pgp' | 'legacy' | 'unknown';
  linkedGroup: number | null;
  linkedObject: number | null;
  hash: string;
  /** DSSE keyids, or the OpenPGP fingerprint from the descriptor. */
  signer: string[];
  time: string | null;
  covers: number[];
}

export async function describeSignatures(img: IntegrityImage): Promise<SignatureClaim[]> {
  const out: SignatureClaim[] = [];
  for (const x of img.descriptors) {
    if (x.d.dataType !== DataType.Signature) continue;
    const extra = decodeSignatureExtra(x.d.extra);
    const c: SignatureClaim = {
      id: x.d.id,
      format: 'unknown',
      linkedGroup: x.d.linksGroup ? x.d.linkedId : null,
      linkedObject: !x.d.linksGroup && x.d.linkedId ? x.d.linkedId : null,
      hash: HASH_TYPE_NAMES[extra.hashType] ?? `type ${extra.hashType}`,
      signer: extra.entity ? [extra.entity] : [],
      time: x.d.createdAt === GO_ZERO_TIME ? null : sifTime(x.d.createdAt),
      covers: [],
    };
    const data = await readObjectData(img, x.d).catch(() => Buffer.alloc(0));
    const env = parseEnvelope(data);
    let text: string | undefined;
    if (env) {
      c.format = 'dsse';
      c.signer = env.signatures.map((s) => String(s?.keyid ?? ''));
      text = Buffer.from(env.payload, 'base64').toString('utf8');
    } else {
      try {
        const openpgp = await loadOpenpgp();
        const msg = await openpgp.readCleartextMessage({ cleartextMessage: data.toString('utf8') });
        text = msg.getText();
        c.format = text.startsWith('SIFHASH:\n') ? 'legacy' : 'pgp';
        const sig = ((msg as unknown as { signature: openpgp.Signature }).signature.packets as unknown as openpgp.SignaturePacket[])[0];
        if (sig?.created) c.time = sig.created.toISOString();
      } catch {
        text = undefined;
      }
    }
    if (c.format === 'legacy') c.covers = c.linkedObject ? [c.linkedObject] : [];
    else if (text !== undefined && c.linkedGroup) {
      try {
        const md = decodeImageMetadata(text);
        const min = groupMinId(img, c.linkedGroup) ?? 0;
        c.covers = md.objects.map((o) => min + o.relativeId);
      } catch {
        c.covers = [];
      }
    }
    out.push(c);
  }
  return out;
}
