/**
 * A bash tokenizer for job scripts, enough to read them the way bash would:
 * quotes ('...', "...", $'...', backslashes), parameter expansions, command
 * substitutions ($(...), `...`, nested), arithmetic, line continuations,
 * comments, operators, redirections and here-documents. It splits the text
 * into simple commands and keeps each word's offsets in the source, so a
 * rewrite can change one word and leave every other byte as the user wrote it.
 *
 * It does not run anything; an expansion it cannot evaluate is kept as an
 * `expr` part and reported as unresolved by `wordValue`. Pure: no I/O.
 */
import { InputError } from '../errors.js';

export type Part =
  /** Literal text after quote removal. `quoted` is false only for bare text (where ~ and globs act). */
  | { kind: 'lit'; text: string; quoted: boolean }
  /** $NAME or ${NAME}, optionally ${NAME:-default} (default kept as source text). */
  | { kind: 'var'; name: string; quoted: boolean; fallback?: string }
  /** Anything else that expands at run time: $(...), `...`, $((...)), ${x%y}, $@, ... */
  | { kind: 'expr'; raw: string; body: string; quoted: boolean };

export interface Word {
  /** The word as written, quotes included. */
  raw: string;
  start: number;
  end: number;
  parts: Part[];
}

export interface Redirect {
  /** Operator and target as written, e.g. `2>&1`, `> analysis.log`, `<<EOF`. */
  raw: string;
  start: number;
  end: number;
}

export interface SimpleCommand {
  words: Word[];
  redirects: Redirect[];
  /** Offsets of the first and one past the last character (words and redirects). */
  start: number;
  end: number;
  /** The operator that ended the command: `\n`, `;`, `&&`, `|`, ..., or '' at the end of the text. */
  terminator: string;
  /** The operator before it (`\n` at the start of a line). */
  preceded: string;
  /** How many ( subshells or function bodies it is inside. */
  parens: number;
}

export interface Tokens {
  commands: SimpleCommand[];
  /** Offsets where each physical line starts. */
  lineStarts: number[];
}

const OPERATORS = ['&&', '||', ';;', '|&', '&>>', '&>', '<<<', '<<-', '<<', '>>', '>&', '<&', '>|', '<>', ';', '&', '|', '(', ')', '<', '>'];
const REDIRECT_OPS = new Set(['&>>', '&>', '<<<', '<<-', '<<', '>>', '>&', '<&', '>|', '<>', '<', '>']);

/** 1-based line number of `offset`. */
export function lineOf(lineStarts: readonly number[], offset: number): number {
  let lo = 0;
  let hi = lineStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (lineStarts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

/** The physical line `n` (1-based) of `text`, without its newline. */
export function lineText(text: string, lineStarts: readonly number[], n: number): string {
  const start = lineStarts[n - 1] ?? text.length;
  const next = lineStarts[n];
  return text.slice(start, next === undefined ? text.length : next - 1);
}

class Scanner {
  readonly lineStarts: number[] = [0];
  i = 0;
  constructor(readonly text: string, readonly file: string) {
    for (let k = 0; k < text.length; k++) if (text[k] === '\n') this.lineStarts.push(k + 1);
  }

  fail(what: string, at: number): never {
    const n = lineOf(this.lineStarts, at);
    throw new InputError(`${this.file}:${n}: ${what}: ${lineText(this.text, this.lineStarts, n).trim()}`, {
      hint: 'the script must be one bash would run; check it with `bash -n FILE`',
    });
  }

  /** Index just past the quote that closes the one at `i`, for '...'. */
  endSingle(i: number): number {
    const close = this.text.indexOf("'", i + 1);
    if (close < 0) this.fail("this line opens a ' quote that is never closed", i);
    return close + 1;
  }

  /** Index just past a `...` starting at `i`. */
  endBacktick(i: number): number {
    for (let k = i + 1; k < this.text.length; k++) {
      if (this.text[k] === '\\') k++;
      else if (this.text[k] === '`') return k + 1;
    }
    this.fail('this line opens a ` (command substitution) that is never closed', i);
  }

  /** Index just past the "..." starting at `i`. */
  endDouble(i: number): number {
    for (let k = i + 1; k < this.text.length; k++) {
      const c = this.text[k];
      if (c === '\\') k++;
      else if (c === '"') return k + 1;
      else if (c === '`') k = this.endBacktick(k) - 1;
      else if (c === '$' && (this.text[k + 1] === '(' || this.text[k + 1] === '{')) k = this.endDollar(k) - 1;
    }
    this.fail('this line opens a " quote that is never closed', i);
  }

  /** Index just past $(...), $((...)) or ${...} starting at the `$` at `i`. */
  endDollar(i: number): number {
    const open = this.text[i + 1]!;
    const close = open === '(' ? ')' : '}';
    let depth = 0;
    for (let k = i + 1; k < this.text.length; k++) {
      const c = this.text[k];
      if (c === '\\') k++;
      else if (c === "'" && open === '(') k = this.endSingle(k) - 1;
      else if (c === '"') k = this.endDouble(k) - 1;
      else if (c === '`') k = this.endBacktick(k) - 1;
      else if (c === '$' && (this.text[k + 1] === '(' || this.text[k + 1] === '{')) k = this.endDollar(k) - 1;
      else if (c === open) depth++;
      else if (c === close) {
        depth--;
        if (depth === 0) return k + 1;
      }
    }
    this.fail(`this line opens a $${open} that is never closed`, i);
  }

  /** Reads a $-expansion at `i` into a part; returns the part and the end. */
  dollar(i: number, quoted: boolean): [Part, number] {
    const t = this.text;
    const next = t[i + 1];
    if (next === '(' || next === '{') {
      const end = this.endDollar(i);
      const raw = t.slice(i, end);
      if (next === '{') {
        const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-(.*))?\}$/s.exec(raw);
        if (m) return [{ kind: 'var', name: m[1]!, quoted, ...(m[2] !== undefined ? { fallback: m[2] } : {}) }, end];
      }
      return [{ kind: 'expr', raw, body: raw.slice(2, -1), quoted }, end];
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(t.slice(i + 1, i + 200));
    if (name) return [{ kind: 'var', name: name[0], quoted }, i + 1 + name[0].length];
    if (next !== undefined && /[0-9@*#?$!-]/.test(next)) return [{ kind: 'expr', raw: t.slice(i, i + 2), body: next, quoted }, i + 2];
    return [{ kind: 'lit', text: '$', quoted }, i + 1];
  }

  /** The parts of a "..." whose opening quote is at `i` (end excluded). */
  doubleParts(i: number, end: number): Part[] {
    const t = this.text;
    const parts: Part[] = [];
    let lit = '';
    const flush = () => {
      if (lit) parts.push({ kind: 'lit', text: lit, quoted: true });
      lit = '';
    };
    for (let k = i + 1; k < end - 1; ) {
      const c = t[k]!;
      if (c === '\\' && k + 1 < end - 1) {
        const n = t[k + 1]!;
        if (n === '\n') k += 2;
        else if ('$`"\\'.includes(n)) (lit += n), (k += 2);
        else (lit += c), k++;
      } else if (c === '$') {
        const [p, e] = this.dollar(k, true);
        if (p.kind === 'lit') lit += p.text;
        else flush(), parts.push(p);
        k = e;
      } else if (c === '`') {
        const e = this.endBacktick(k);
        flush();
        parts.push({ kind: 'expr', raw: t.slice(k, e), body: t.slice(k + 1, e - 1), quoted: true });
        k = e;
      } else (lit += c), k++;
    }
    flush();
    // "" is an empty word, not no word.
    if (!parts.length) parts.push({ kind: 'lit', text: '', quoted: true });
    return parts;
  }
}

const ANSI: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', v: '\v', '\\': '\\', "'": "'", '"': '"' };

/**
 * Splits `text` (a bash script) into simple commands. `file` names the script
 * in messages. An unclosed quote, substitution or here-document is an
 * InputError quoting the line where it opened.
 */
export function tokenize(text: string, file: string): Tokens {
  const s = new Scanner(text, file);
  const t = text;
  const commands: SimpleCommand[] = [];
  let words: Word[] = [];
  let redirects: Redirect[] = [];
  let word: { start: number; parts: Part[] } | undefined;
  let preceded = '\n';
  let parens = 0;
  const heredocs: { delim: string; strip: boolean; at: number }[] = [];

  const addLit = (text: string, quoted: boolean) => {
    word ??= { start: -1, parts: [] };
    const last = word.parts[word.parts.length - 1];
    if (last?.kind === 'lit' && last.quoted === quoted) last.text += text;
    else word.parts.push({ kind: 'lit', text, quoted });
  };
  const begin = (at: number) => {
    word ??= { start: at, parts: [] };
    if (word.start < 0) word.start = at;
  };
  const endWord = (at: number) => {
    if (!word) return;
    words.push({ raw: t.slice(word.start, at), start: word.start, end: at, parts: word.parts });
    word = undefined;
  };
  const endCommand = (terminator: string) => {
    if (words.length || redirects.length) {
      const all = [...words, ...redirects];
      commands.push({ words, redirects, start: Math.min(...all.map((w) => w.start)), end: Math.max(...all.map((w) => w.end)), terminator, preceded, parens });
    }
    words = [];
    redirects = [];
    preceded = terminator;
  };

  let i = 0;
  while (i < t.length) {
    const c = t[i]!;
    if (c === '\\') {
      if (t[i + 1] === '\n') {
        i += 2; // a line continuation disappears, even inside a word
        continue;
      }
      begin(i);
      addLit(t[i + 1] ?? '', true);
      i += 2;
      continue;
    }
    if (c === ' ' || c === '\t') {
      endWord(i);
      i++;
      continue;
    }
    if (c === '\n') {
      endWord(i);
      endCommand('\n');
      i++;
      // Here-document bodies start after the line that announced them.
      while (heredocs.length) {
        const h = heredocs.shift()!;
        let found = false;
        while (i < t.length) {
          const nl = t.indexOf('\n', i);
          const lineEnd = nl < 0 ? t.length : nl;
          const line = t.slice(i, lineEnd);
          i = nl < 0 ? t.length : nl + 1;
          if ((h.strip ? line.replace(/^\t+/, '') : line) === h.delim) {
            found = true;
            break;
          }
        }
        if (!found) s.fail(`the here-document <<${h.delim} is never ended by a line "${h.delim}"`, h.at);
      }
      continue;
    }
    if (c === '#' && !word) {
      const nl = t.indexOf('\n', i);
      i = nl < 0 ? t.length : nl;
      continue;
    }
    if (c === "'") {
      begin(i);
      const e = s.endSingle(i);
      addLit(t.slice(i + 1, e - 1), true);
      i = e;
      continue;
    }
    if (c === '"') {
      begin(i);
      const e = s.endDouble(i);
      word!.parts.push(...s.doubleParts(i, e));
      i = e;
      continue;
    }
    if (c === '$' && t[i + 1] === "'") {
      begin(i);
      let k = i + 2;
      let lit = '';
      for (; k < t.length && t[k] !== "'"; k++) {
        if (t[k] === '\\' && k + 1 < t.length) lit += ANSI[t[++k]!] ?? `\\${t[k]}`;
        else lit += t[k];
      }
      if (k >= t.length) s.fail("this line opens a $' quote that is never closed", i);
      addLit(lit, true);
      i = k + 1;
      continue;
    }
    if (c === '$' && t[i + 1] === '"') {
      i++; // $"..." (locale translation) reads as "..."
      continue;
    }
    if (c === '$') {
      begin(i);
      const [p, e] = s.dollar(i, false);
      if (p.kind === 'lit') addLit(p.text, false);
      else word!.parts.push(p);
      i = e;
      continue;
    }
    if (c === '`') {
      begin(i);
      const e = s.endBacktick(i);
      word!.parts.push({ kind: 'expr', raw: t.slice(i, e), body: t.slice(i + 1, e - 1), quoted: false });
      i = e;
      continue;
    }
    const op = OPERATORS.find((o) => t.startsWith(o, i));
    if (op && REDIRECT_OPS.has(op)) {
      // `2>&1`, `3<x`: a bare number right before the operator is its file descriptor.
      let start = i;
      if (word && word.parts.length === 1 && word.parts[0]!.kind === 'lit' && !word.parts[0]!.quoted && /^\d+$/.test(word.parts[0]!.text)) {
        start = word.start;
        word = undefined;
      } else endWord(i);
      let k = i + op.length;
      while (t[k] === ' ' || t[k] === '\t') k++;
      // The target: one word, read with the same rules (quotes may follow).
      const targetStart = k;
      for (; k < t.length && !/[\s;&|()<>]/.test(t[k]!); k++) {
        if (t[k] === '\\') k++;
        else if (t[k] === "'") k = s.endSingle(k) - 1;
        else if (t[k] === '"') k = s.endDouble(k) - 1;
        else if (t[k] === '`') k = s.endBacktick(k) - 1;
        else if (t[k] === '$' && (t[k + 1] === '(' || t[k + 1] === '{')) k = s.endDollar(k) - 1;
      }
      if (k === targetStart) s.fail(`${op} has no target`, i);
      if (op === '<<' || op === '<<-') heredocs.push({ delim: t.slice(targetStart, k).replace(/['"\\]/g, ''), strip: op === '<<-', at: i });
      redirects.push({ raw: t.slice(start, k), start, end: k });
      i = k;
      continue;
    }
    if (op) {
      endWord(i);
      endCommand(op);
      if (op === '(') parens++;
      else if (op === ')') parens = Math.max(0, parens - 1);
      i += op.length;
      continue;
    }
    begin(i);
    addLit(c, false);
    i++;
  }
  endWord(i);
  endCommand('');
  if (heredocs.length) s.fail(`the here-document <<${heredocs[0]!.delim} is never ended`, heredocs[0]!.at);
  return { commands, lineStarts: s.lineStarts };
}

/**
 * The value of a word, as bash would expand it given `vars` (names known to
 * be set to these values), with ~ expanded from HOME. `unresolved` lists what
 * could not be evaluated ($(...), unknown variables); the value then holds
 * them as written.
 */
export function wordValue(word: Word, vars: ReadonlyMap<string, string>): { value: string; unresolved: string[] } {
  let value = '';
  const unresolved: string[] = [];
  word.parts.forEach((p, idx) => {
    if (p.kind === 'lit') {
      if (idx === 0 && !p.quoted && (p.text === '~' || p.text.startsWith('~/')) && vars.has('HOME')) value += vars.get('HOME')! + p.text.slice(1);
      else value += p.text;
    } else if (p.kind === 'var') {
      const v = vars.get(p.name);
      if (v !== undefined && (v !== '' || p.fallback === undefined)) value += v;
      else if (p.fallback !== undefined && !/[$`"'\\]/.test(p.fallback)) value += p.fallback;
      else {
        unresolved.push(`$${p.name}`);
        value += `\${${p.name}}`;
      }
    } else {
      unresolved.push(p.raw);
      value += p.raw;
    }
  });
  return { value, unresolved };
}

/** The word's text when it has no expansions at all (quotes removed), else undefined. */
export function literal(word: Word): string | undefined {
  return word.parts.every((p) => p.kind === 'lit') ? word.parts.map((p) => (p as { text: string }).text).join('') : undefined;
}
