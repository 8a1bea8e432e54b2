/** `sifpack inspect`: what is inside a SIF, without apptainer. */
import type { Command } from 'commander';
import { InputError } from '../errors.js';
import { labelsFromSquashfs } from '../runtime/image-labels.js';
import { DATA_TYPE_NAMES, DataType, FS_TYPE_NAMES, HASH_TYPE_NAMES, PART_TYPE_NAMES, decodeSignatureExtra, sifTime, uuidString } from '../sif/layout.js';
import { describeSignatures } from '../sif/integrity/describe.js';
import { loadIntegrityImage } from '../sif/integrity/image.js';
import { findObject, partitionOf, readMetadataLabels, readObject, readSif, requirePrimaryPartition } from '../sif/reader.js';
import type { CliContext } from './context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('inspect')
    .summary("show a SIF's header, objects, definition file and labels")
    .description(
      "Show what a SIF holds, without apptainer: the header (architecture, id, dates),\n" +
        'every object (type, name, offset, size; partitions with their filesystem, type\n' +
        'and architecture; signatures), the definition file, the labels, and the sifpack\n' +
        'env and lock hashes when the image has them. Reads images apptainer built too.',
    )
    .argument('<IMAGE.sif>', 'the image')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExamples:\n  sifpack inspect analysis.sif\n  sifpack inspect analysis.sif --json | jq .labels')
    .action(async (file: string, flags: { json?: boolean }) => run(file, flags, ctx));
}

export async function run(file: string, flags: { json?: boolean }, ctx: CliContext): Promise<void> {
  const img = await readSif(file);
  const objects = img.descriptors.map((d) => {
    const part = partitionOf(d);
    const sig = d.dataType === DataType.Signature ? decodeSignatureExtra(d.extra) : undefined;
    return {
      id: d.id,
      type: DATA_TYPE_NAMES[d.dataType] ?? `0x${d.dataType.toString(16)}`,
      name: d.name,
      group: d.groupId || null,
      link: d.linkedId ? `${d.linkedId}${d.linksGroup ? ' (group)' : ''}` : null,
      offset: Number(d.offset),
      size: Number(d.size),
      ...(part ? { partition: { fs: FS_TYPE_NAMES[part.fsType] ?? String(part.fsType), type: PART_TYPE_NAMES[part.partType] ?? String(part.partType), primary: part.partType === 2, arch: part.arch } } : {}),
      ...(sig ? { signature: { hash: HASH_TYPE_NAMES[sig.hashType] ?? String(sig.hashType), entity: sig.entity } } : {}),
    };
  });
  const defObj = findObject(img, DataType.Deffile);
  const deffile = defObj ? (await readObject(img, defObj)).toString('utf8') : null;
  let labels = (await readMetadataLabels(img)) ?? null;
  let labelsFrom: string | null = labels ? 'inspect-metadata.json' : null;
  let primaryError: InputError | undefined;
  try {
    requirePrimaryPartition(img);
    if (!labels) {
      labels = (await labelsFromSquashfs(img, ctx.runner)) ?? null;
      if (labels) labelsFrom = '/.singularity.d/labels.json';
    }
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    primaryError = err;
  }
  // What each signature claims (unverified: `sifpack verify` checks them).
  const signatures = objects.some((o) => o.signature) ? await describeSignatures(await loadIntegrityImage(file)) : [];
  const h = img.header;
  const report = {
    file: img.path,
    size: img.fileSize,
    header: { arch: h.arch, id: uuidString(h.id), created: sifTime(h.createdAt), modified: sifTime(h.modifiedAt), descriptorsFree: Number(h.descriptorsFree), descriptorsTotal: Number(h.descriptorsTotal), dataOffset: Number(h.dataOffset), dataSize: Number(h.dataSize) },
    objects,
    signed: objects.some((o) => o.signature),
    signatures,
    deffile,
    labels,
    labelsFrom,
    sifpack: labels ? { envHash: labels['sifpack.env-hash'] ?? null, lockHash: labels['sifpack.lock-hash'] ?? null, preset: labels['sifpack.preset'] ?? null, version: labels['sifpack.version'] ?? null } : null,
  };
  if (flags.json) ctx.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const out: string[] = [
      `${report.file}  (${report.size} bytes)`,
      `arch ${report.header.arch}  id ${report.header.id}  created ${report.header.created}  modified ${report.header.modified}`,
      `descriptors ${report.header.descriptorsTotal - report.header.descriptorsFree}/${report.header.descriptorsTotal} used${report.signed ? ', signed' : ', not signed'}`,
      '',
      'ID  TYPE          NAME                      OFFSET      SIZE        DETAILS',
      ...objects.map((o) => `${String(o.id).padEnd(3)} ${o.type.padEnd(13)} ${(o.name || '-').padEnd(25)} ${String(o.offset).padEnd(11)} ${String(o.size).padEnd(11)} ${o.partition ? `${o.partition.fs}/${o.partition.type}/${o.partition.arch}` : o.signature ? `${o.signature.hash} by ${o.signature.entity}` : ''}${o.link ? ` link ${o.link}` : ''}`),
    ];
    if (objects.length === 0) out.push('(no objects)');
    if (signatures.length) {
      out.push('', 'Signatures (as claimed; check them with `sifpack verify`):');
      for (const g of signatures) {
        const over = g.linkedGroup ? `group ${g.linkedGroup}` : g.linkedObject ? `object ${g.linkedObject}` : 'nothing';
        const fmt = g.format === 'dsse' ? 'DSSE' : g.format === 'pgp' ? 'OpenPGP' : g.format === 'legacy' ? 'legacy OpenPGP' : 'unrecognised';
        out.push(`  ${g.id}: ${fmt} over ${over}${g.covers.length ? ` (objects ${g.covers.join(', ')})` : ''} by ${g.signer.join(', ') || 'unnamed'}${g.time ? ` at ${g.time}` : ''}`);
      }
    }
    if (deffile) out.push('', 'Definition file:', ...deffile.trimEnd().split('\n').map((l) => `  ${l}`));
    if (labels) out.push('', `Labels (${labelsFrom}):`, ...Object.entries(labels).map(([k, v]) => `  ${k}: ${v}`));
    ctx.stdout.write(`${out.join('\n')}\n`);
  }
  if (primaryError) throw primaryError;
}
