/** `sifpack verify`: check a SIF's signatures (apptainer's format), without apptainer. */
import type { Command } from 'commander';
import path from 'node:path';
import { InputError, RuntimeFailure } from '../errors.js';
import { loadIntegrityImage } from '../sif/integrity/image.js';
import { type SignatureReport, type VerifyReport, verifySif } from '../sif/integrity/verify.js';
import type { CliContext } from './context.js';
import { collect } from './setting-options.js';
import { parseIds } from './sign.js';
import { loadVerifyKeys } from './signing-keys.js';

interface VerifyFlags {
  key?: string[];
  keyring?: string[];
  groupId?: string[];
  sifId?: string[];
  all?: boolean;
  legacyInsecure?: boolean;
  json?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('verify')
    .summary("check a SIF's signatures (apptainer's format) against your keys")
    .description(
      'Check the signatures in a SIF as `apptainer verify` does, without apptainer.\n' +
        'For every object group (or the groups/objects named), each linked signature\n' +
        'must be valid under a key you give, and the header, descriptors and data it\n' +
        'covers must be unchanged. Reports, per signature, who signed, when, and which\n' +
        'object ids match; exit 0 only when everything checked is signed and intact.',
    )
    .argument('<IMAGE.sif>', 'the image to check')
    .option('--key <FILE>', 'PEM public key (DSSE) or armored OpenPGP public key (repeatable)', collect)
    .option('--keyring <FILE>', 'armored OpenPGP keyring, e.g. from `apptainer key export` (repeatable)', collect)
    .option('-g, --group-id <ID>', 'verify this object group only (repeatable)', collect)
    .option('-i, --sif-id <ID>', 'verify this object only (repeatable)', collect)
    .option('-a, --all', 'with --legacy-insecure: verify every object')
    .option('--legacy-insecure', 'check legacy signatures (SingularityCE < 3.6; they cover object data only)')
    .option('--json', 'print one JSON report')
    .addHelpText(
      'after',
      `
Examples:
  sifpack verify analysis.sif --key sign-ed25519.pub.pem
  sifpack verify analysis.sif --keyring team.asc --json
  sifpack verify old.sif --keyring team.asc --legacy-insecure

Exit codes: 0 verified, 1 not signed / not valid / tampered, 2 bad input.`,
    )
    .action(async (file: string, flags: VerifyFlags) => {
      await run(file, flags, ctx);
    });
}

function describeSignature(s: SignatureReport): string[] {
  const kind = s.format === 'dsse' ? 'DSSE' : s.format === 'pgp' ? 'OpenPGP' : s.format === 'legacy' ? 'legacy OpenPGP' : 'unrecognised';
  const target = s.linkedGroup ? `group ${s.linkedGroup}` : s.linkedObject ? `object ${s.linkedObject}` : 'nothing';
  const status = !s.checked ? 'NOT CHECKED' : s.ok ? 'ok' : 'FAILED';
  const lines = [`signature object ${s.id} (${kind}, ${s.hash}) over ${target}: ${status}`];
  if (s.signers.length) lines.push(`  signed by ${s.signers.map((x) => `${x.fingerprint}${x.userId ? ` ${x.userId}` : ''}`).join(', ')}${s.time ? ` at ${s.time}` : ''}`);
  else if (s.claimedBy.length) lines.push(`  names as signer ${s.claimedBy.join(', ')}${s.time ? ` at ${s.time}` : ''}`);
  if (s.verified.length) lines.push(`  ${s.format === 'legacy' ? 'data' : 'header, descriptors and data'} match for object${s.verified.length > 1 ? 's' : ''} ${s.verified.join(', ')}`);
  for (const p of s.problems) lines.push(`  ${p.message}`);
  return lines;
}

export function formatReport(r: VerifyReport): string {
  const lines = [r.file];
  for (const s of r.signatures) lines.push(...describeSignature(s));
  for (const p of r.problems) lines.push(p.message);
  lines.push(r.ok ? 'verified' : 'NOT verified');
  return `${lines.join('\n')}\n`;
}

export async function run(file: string, flags: VerifyFlags, ctx: CliContext): Promise<VerifyReport> {
  const groupIds = parseIds(flags.groupId, '--group-id');
  const objectIds = parseIds(flags.sifId, '--sif-id');
  if (flags.all && !flags.legacyInsecure) throw new InputError('--all only applies with --legacy-insecure', { hint: 'without it every object group is verified already' });
  if (!flags.key?.length && !flags.keyring?.length) {
    throw new InputError('no key given: pass --key PUBLIC.pem (DSSE) or --key/--keyring KEYS.asc (OpenPGP)', { hint: 'sifpack keeps no keyring of its own; export yours with `apptainer key export KEYS.asc`' });
  }
  const keys = await loadVerifyKeys(flags.key ?? [], flags.keyring ?? [], ctx);
  const image = path.resolve(ctx.cwd, file);
  const report = await verifySif(await loadIntegrityImage(image), keys, { groupIds, objectIds, legacy: !!flags.legacyInsecure, all: !!flags.all });
  report.file = image;
  ctx.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  if (!report.ok) {
    const n = report.problems.length + report.signatures.reduce((a, s) => a + s.problems.length, 0);
    throw new RuntimeFailure(`${file}: not verified (${n} problem${n === 1 ? '' : 's'}, listed above)`);
  }
  return report;
}
