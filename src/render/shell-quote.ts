/**
 * The one quoting function for every value sifpack writes into shell (sbatch
 * scripts, %post, RUN lines). POSIX single quotes: everything inside is
 * literal — spaces, $, backticks, ;, newlines, non-ASCII — and a single quote
 * is written as '\''. Words made only of safe characters stay bare so the
 * scripts remain readable.
 */
export function shellQuote(value: string): string {
  if (value !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Quotes each word and joins them with spaces. */
export function shellJoin(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}
