/**
 * Moving a conda prefix to another path, the way conda itself does when it
 * links a package (conda/core/portability.py: `replace_prefix`,
 * `binary_replace`) and conda-pack does when it packs an env
 * (conda_pack/core.py `Packer.add`, conda_pack/prefixes.py): pure functions on
 * bytes, no I/O. The stream that packs the prefix (src/runtime/build-context.ts)
 * calls them for each file.
 *
 * - text files: every occurrence of the old prefix becomes the new one (the
 *   length may change);
 * - binary files (conda's `file_mode: binary`, and ELF objects): each
 *   occurrence sits in a NUL-terminated C string, so the rest of that string
 *   moves left and NULs pad it to its old length; a longer new prefix cannot
 *   fit and is refused;
 * - compiled Python (.pyc): the prefix sits in marshalled strings (co_filename)
 *   that carry their length, so the string is rewritten and its length field
 *   updated — NUL padding would corrupt the marshal stream.
 */

import { stripCredentials } from './channel.js';

/** Thrown when a binary file cannot take the new prefix. */
export class PrefixTooLongError extends Error {}

const isInside = (p: string, prefix: string) => p === prefix || p.startsWith(`${prefix}/`);

/** Every occurrence of `from` replaced by `to`; the same Buffer when there is none. */
export function replaceText(data: Buffer, from: Buffer, to: Buffer): Buffer {
  let at = data.indexOf(from);
  if (at < 0) return data;
  const parts: Buffer[] = [];
  let last = 0;
  while (at >= 0) {
    parts.push(data.subarray(last, at), to);
    last = at + from.length;
    at = data.indexOf(from, last);
  }
  parts.push(data.subarray(last));
  return Buffer.concat(parts);
}

/**
 * conda's binary replacement: in each C string holding `from` (up to its NUL),
 * every `from` becomes `to` and the string is padded with NULs to its old
 * length, so offsets in the file do not move. An occurrence with no NUL after
 * it is left alone, as conda's regex does. Throws PrefixTooLongError when `to`
 * is longer than `from` and the file holds the prefix.
 */
export function replaceBinary(data: Buffer, from: Buffer, to: Buffer): Buffer {
  let at = data.indexOf(from);
  if (at < 0) return data;
  if (to.length > from.length) throw new PrefixTooLongError(`the new prefix (${to.length} bytes) is longer than the old one (${from.length} bytes)`);
  const out = Buffer.from(data);
  while (at >= 0) {
    const nul = data.indexOf(0, at + from.length);
    if (nul < 0) break;
    const segment = data.subarray(at, nul);
    const replaced = replaceText(segment, from, to);
    replaced.copy(out, at);
    out.fill(0, at + replaced.length, nul);
    at = data.indexOf(from, nul + 1);
  }
  return out;
}

/** ELF magic: such files are linked binaries whose paths are C strings. */
export function isElf(data: Buffer): boolean {
  return data.length >= 4 && data[0] === 0x7f && data[1] === 0x45 && data[2] === 0x4c && data[3] === 0x46;
}

// Python's marshal string type codes (Python/marshal.c), without FLAG_REF (0x80).
const LONG_STRINGS = new Set([0x73 /* s bytes */, 0x74 /* t interned */, 0x75 /* u unicode */, 0x61 /* a ascii */, 0x41 /* A ascii interned */]);
const SHORT_STRINGS = new Set([0x7a /* z short ascii */, 0x5a /* Z short ascii interned */]);

/**
 * A .pyc with the prefix rewritten inside its marshalled strings, lengths
 * updated. Returns undefined when an occurrence is not at the start of a
 * marshalled string (then the caller drops the .pyc and Python compiles the
 * source again). The pyc header (16 bytes: magic, flags, source mtime, size)
 * is kept: the source's mtime and size do not change.
 */
export function rewritePyc(data: Buffer, from: Buffer, to: Buffer): Buffer | undefined {
  let at = data.indexOf(from);
  if (at < 0) return data;
  const parts: Buffer[] = [];
  let last = 0;
  while (at >= 0) {
    let lenAt: number;
    let len: number;
    let short: boolean;
    const t4 = at >= 5 ? data[at - 5]! & 0x7f : -1;
    const t1 = at >= 2 ? data[at - 2]! & 0x7f : -1;
    if (at - 5 >= 16 && LONG_STRINGS.has(t4) && data.readUInt32LE(at - 4) >= from.length && at + data.readUInt32LE(at - 4) <= data.length) {
      lenAt = at - 4;
      len = data.readUInt32LE(lenAt);
      short = false;
    } else if (at - 2 >= 16 && SHORT_STRINGS.has(t1) && data[at - 1]! >= from.length && at + data[at - 1]! <= data.length) {
      lenAt = at - 1;
      len = data[lenAt]!;
      short = true;
    } else {
      return undefined;
    }
    const value = replaceText(data.subarray(at, at + len), from, to);
    if (short && value.length > 255) return undefined;
    const lenField = Buffer.alloc(short ? 1 : 4);
    if (short) lenField[0] = value.length;
    else lenField.writeUInt32LE(value.length);
    parts.push(data.subarray(last, lenAt), lenField, value);
    last = at + len;
    at = data.indexOf(from, last);
  }
  parts.push(data.subarray(last));
  return Buffer.concat(parts);
}

/**
 * The mode a file gets in the image: readable by anyone, directories and
 * executables searchable by anyone (`a+rX`). Setuid/setgid/sticky bits are
 * dropped: the files become root's, and a user env has no business shipping
 * root-owned setuid programs.
 */
export function imageMode(mode: number, isDirectory: boolean): number {
  const m = mode & 0o777;
  return m | 0o444 | (isDirectory || m & 0o111 ? 0o111 : 0);
}

/** A symlink target with an absolute path into the old prefix moved to the new one; others unchanged. */
export function relocateLinkTarget(target: string, from: string, to: string): string {
  return isInside(target, from) ? to + target.slice(from.length) : target;
}

export type FileMode = 'text' | 'binary';

/** What happened to one file's content. */
export type Relocated =
  | { kind: 'unchanged'; data: Buffer }
  | { kind: 'text' | 'binary' | 'pyc'; data: Buffer }
  /** A .pyc whose strings could not be rewritten: left out, Python compiles the source. */
  | { kind: 'dropped' }
  /** Holds the prefix but is neither text, ELF, nor .pyc, nor recorded by conda: shipped as it is. */
  | { kind: 'opaque'; data: Buffer };

/**
 * Relocates one file's content. `mode` is conda's `file_mode` when a record
 * lists the file with a prefix placeholder; otherwise the content decides, as
 * conda-pack does for files no record manages: .pyc by name, ELF by magic,
 * text when it decodes as UTF-8 without NULs, else opaque.
 */
export function relocateContent(rel: string, data: Buffer, from: string, to: string, mode?: FileMode): Relocated {
  const a = Buffer.from(from);
  if (data.indexOf(a) < 0) return { kind: 'unchanged', data };
  const b = Buffer.from(to);
  if (mode === 'text') return { kind: 'text', data: replaceText(data, a, b) };
  if (mode === 'binary') return { kind: 'binary', data: replaceBinary(data, a, b) };
  if (rel.endsWith('.pyc')) {
    const out = rewritePyc(data, a, b);
    return out ? { kind: 'pyc', data: out } : { kind: 'dropped' };
  }
  if (isElf(data)) return { kind: 'binary', data: replaceBinary(data, a, b) };
  if (isText(data)) return { kind: 'text', data: replaceText(data, a, b) };
  return { kind: 'opaque', data };
}

const decoder = new TextDecoder('utf-8', { fatal: true });
function isText(data: Buffer): boolean {
  if (data.indexOf(0) >= 0) return false;
  try {
    decoder.decode(data);
    return true;
  } catch {
    return false;
  }
}

/** pip's RECORD hash: sha256, urlsafe base64 without padding (PEP 376 / the wheel spec). */
export type RecordHash = { hash: string; size: number };

/** Splits a RECORD line (CSV: path,hash,size; the path may be quoted). */
function splitRecordLine(line: string): [string, string, string] | undefined {
  let p: string;
  let rest: string;
  if (line.startsWith('"')) {
    let i = 1;
    p = '';
    while (i < line.length) {
      if (line[i] === '"' && line[i + 1] === '"') {
        p += '"';
        i += 2;
      } else if (line[i] === '"') break;
      else p += line[i++];
    }
    rest = line.slice(i + 1);
    if (!rest.startsWith(',')) return undefined;
    rest = rest.slice(1);
  } else {
    const c = line.indexOf(',');
    if (c < 0) return undefined;
    p = line.slice(0, c);
    rest = line.slice(c + 1);
  }
  const c2 = rest.lastIndexOf(',');
  if (c2 < 0) return undefined;
  return [p, rest.slice(0, c2), rest.slice(c2 + 1)];
}

const quoteCsv = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/**
 * A pip RECORD with the hash and size of every file the relocation changed
 * brought up to date (pip checks them on uninstall and `pip check`-style
 * tools compare them), then the old prefix replaced in absolute paths.
 * `dirRel` is the dist-info directory relative to the prefix; RECORD paths
 * are relative to its parent (site-packages) or absolute.
 */
export function rewriteRecord(text: string, dirRel: string, changed: ReadonlyMap<string, RecordHash>, from: string, to: string): string {
  const base = dirRel.split('/').slice(0, -1);
  const lines = text.split('\n').map((line) => {
    const cr = line.endsWith('\r') ? '\r' : '';
    const body = cr ? line.slice(0, -1) : line;
    const f = body ? splitRecordLine(body) : undefined;
    if (!f) return line;
    const [p, hash] = f;
    const rel = p.startsWith('/') ? (isInside(p, from) ? p.slice(from.length + 1) : undefined) : normalize([...base, ...p.split('/')]);
    const c = rel !== undefined ? changed.get(rel) : undefined;
    if (!c || !hash) return line;
    return `${quoteCsv(p)},sha256=${c.hash},${c.size}${cr}`;
  });
  return replaceText(Buffer.from(lines.join('\n')), Buffer.from(from), Buffer.from(to)).toString();
}

function normalize(parts: string[]): string | undefined {
  const out: string[] = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(p);
  }
  return out.join('/');
}

/** Files of a prefix that record channel URLs, which may carry a token or user:password. */
export function recordsChannels(rel: string): boolean {
  return /^conda-meta\/[^/]+\.json$/.test(rel) || rel === 'conda-meta/history' || rel === '.condarc';
}

/**
 * Channel URLs with their credentials (`/t/TOKEN/`, `user:password@`) taken
 * out, as export does: an image is shared, a token in it is a leaked token.
 * Returns undefined when there was nothing to take out.
 */
export function scrubCredentials(data: Buffer): Buffer | undefined {
  let changed = false;
  const out = data.toString('utf8').replace(/[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (url) => {
    const c = stripCredentials(url);
    if (c.hadCredentials) changed = true;
    return c.url;
  });
  return changed ? Buffer.from(out) : undefined;
}
