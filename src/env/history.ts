/**
 * conda-meta/history: a log of transactions, each opening with
 * `==> DATE <==`, then `# cmd: ...`, `+channel::pkg` / `-channel::pkg` lines
 * and `# update specs: [...]` / `# remove specs: [...]` / `# neutered specs:`.
 * Replaying the specs in order gives what the user asked for, the way conda's
 * History.get_requested_specs_map() does. Old histories (conda < 4.4) have no
 * specs lines; for those the `# cmd:` line is read instead.
 */
import { InputError } from '../errors.js';
import { parseMatchSpec } from '../model/match-spec.js';

export interface HistoryData {
  /** Package name → the spec text the user last asked for, in first-asked order. */
  requested: Map<string, string>;
  /** Channels given with -c/--channel, in first-seen order. */
  channels: string[];
  /** --override-channels was used at least once. */
  overrideChannels: boolean;
}

interface Request {
  cmd?: string[];
  update: string[];
  remove: string[];
  neutered: string[];
  hasSpecLines: boolean;
}

/** Reads a Python list literal of strings: ['a', "b's"]. */
function parsePythonList(text: string, where: string): string[] {
  const body = text.trim();
  if (!body.startsWith('[') || !body.endsWith(']')) throw new InputError(`${where}: expected a list like ['numpy', 'python=3.11']`);
  const out: string[] = [];
  const inner = body.slice(1, -1);
  const re = /\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*(?:,|$)/gy;
  let pos = 0;
  while (pos < inner.length) {
    re.lastIndex = pos;
    const m = re.exec(inner);
    if (!m) throw new InputError(`${where}: cannot read the spec list near ${JSON.stringify(inner.slice(pos, pos + 30))}`);
    out.push((m[1] ?? m[2] ?? '').replace(/\\(.)/g, '$1'));
    pos = re.lastIndex;
  }
  return out;
}

const VALUE_OPTIONS = new Set(['-n', '--name', '-p', '--prefix', '-c', '--channel', '--file', '-f', '--repodata-fn', '--solver', '--subdir', '--platform']);

/** Specs and channels from an old-format `# cmd: conda install -c x numpy` line. */
function readCommand(argv: string[]): { action?: 'update' | 'remove'; specs: string[]; channels: string[]; override: boolean } {
  const sub = argv.findIndex((a, i) => i > 0 && !a.startsWith('-'));
  const verb = sub > 0 ? argv[sub] : undefined;
  const action = verb && ['install', 'create', 'update', 'upgrade'].includes(verb) ? 'update' : verb && ['remove', 'uninstall'].includes(verb) ? 'remove' : undefined;
  const specs: string[] = [];
  const channels: string[] = [];
  let override = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (i === sub) continue;
    if (a === '--override-channels') override = true;
    else if (a === '-c' || a === '--channel') channels.push(argv[++i] ?? '');
    else if (a.startsWith('--channel=')) channels.push(a.slice('--channel='.length));
    else if (VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-') && i > sub && sub > 0) specs.push(a);
  }
  return { ...(action ? { action } : {}), specs, channels: channels.filter(Boolean), override };
}

/**
 * Parses history text. `file` names the file in errors; a specs line that
 * cannot be read is an input error (a corrupt history), since guessing would
 * silently change what gets exported.
 */
export function parseHistory(text: string, file: string): HistoryData {
  const requests: Request[] = [];
  let current: Request | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((line, idx) => {
    if (/^==>.*<==\s*$/.test(line)) {
      current = { update: [], remove: [], neutered: [], hasSpecLines: false };
      requests.push(current);
      return;
    }
    if (!current) {
      if (line.trim() !== '') current = { update: [], remove: [], neutered: [], hasSpecLines: false };
      if (current) requests.push(current);
      else return;
    }
    const cmd = /^#\s*cmd:\s*(.+)$/.exec(line);
    if (cmd) {
      current.cmd = cmd[1]!.trim().split(/\s+/);
      return;
    }
    const specs = /^#\s*(\w+)\s+specs:\s*(.*)$/.exec(line);
    if (specs) {
      const where = `${file}:${idx + 1}`;
      const body = specs[2]!.trim();
      const list = body.startsWith('[') ? parsePythonList(body, where) : body.split(',').map((s) => s.trim());
      const clean = list.filter((s) => s && !s.endsWith('@'));
      current.hasSpecLines = true;
      const action = specs[1]!;
      if (['update', 'install', 'create'].includes(action)) current.update.push(...clean);
      else if (['remove', 'uninstall'].includes(action)) current.remove.push(...clean);
      else if (action === 'neutered') current.neutered.push(...clean);
    }
  });

  const requested = new Map<string, string>();
  const channels: string[] = [];
  let overrideChannels = false;
  const nameOf = (s: string) => parseMatchSpec(s)?.name;
  for (const r of requests) {
    let { update, remove } = r;
    if (r.cmd) {
      const c = readCommand(r.cmd);
      for (const ch of c.channels) if (!channels.includes(ch)) channels.push(ch);
      overrideChannels ||= c.override;
      if (!r.hasSpecLines && c.action === 'update') update = c.specs;
      if (!r.hasSpecLines && c.action === 'remove') remove = c.specs;
    }
    for (const s of remove) {
      const n = nameOf(s);
      if (n) requested.delete(n);
    }
    for (const s of [...update, ...r.neutered]) {
      const n = nameOf(s);
      if (n) requested.set(n, s);
    }
  }
  return { requested, channels, overrideChannels };
}
