/**
 * The one quoting function for every value sifpack writes into shell (sbatch
 * scripts, %post, RUN lines). POSIX single quotes: everything inside is
 * literal — spaces, $, backticks, ;, newlines, non-ASCII — and a single quote
 * is written as '\''. Words made only of safe characters stay bare so the
 * scripts remain readable.
 */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(value: string): string {
  if (value !== '' && SAFE.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Quotes each word and joins them with spaces. */
export function shellJoin(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}

/**
 * A value for APPTAINERENV_NAME / SINGULARITYENV_NAME. apptainer does not pass
 * these through as they are: it writes `export NAME="value"` (only `"`
 * escaped) and evaluates that, so `$HOME` expands and `\`id\`` runs inside the
 * container (runtime/engine/apptainer/process_linux.go, injectEnvHandler).
 * Escaping \ $ ` here makes that evaluation give back the value as typed.
 * Checked with real apptainer by test/integration/slurm.test.ts.
 */
export function containerEnvValue(value: string): string {
  return value.replace(/[\\$`]/g, (c) => `\\${c}`);
}

/**
 * The same quoting for the scripts apptainer sources itself (%environment,
 * /.singularity.d/env/*.sh): those are read by apptainer's embedded shell
 * interpreter, not by /bin/sh, and under apptainer 1.4.5 a single quote
 * written as '\'' arrives as \'. Double quotes with \ " $ ` escaped come
 * through exactly (spaces, newlines, unicode, = included), in sh and bash too.
 * Checked with real apptainer by test/integration/apptainer-compat.test.ts.
 */
export function envScriptQuote(value: string): string {
  if (value !== '' && SAFE.test(value)) return value;
  return `"${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}
