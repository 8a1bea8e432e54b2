/**
 * Reads a hand-written job script that activates a conda environment on the
 * host and works out how to run it through an image instead: which
 * environment it uses, which lines only served conda (to remove), and which
 * commands ran in the environment (to run through `apptainer exec`).
 *
 * The result is a list of edits on the original text, so everything else —
 * #SBATCH lines, other modules, exports, redirections, comments — stays
 * byte for byte. Rendering the new text (quoting the inserted words) is
 * src/render/migrate.ts. Pure: no I/O; the caller passes what bash would
 * know from outside (HOME, USER) and the directory the job starts in.
 */
import path from 'node:path';
import { InputError } from '../errors.js';
import { type SimpleCommand, type Word, lineOf, lineText, literal, tokenize, wordValue } from './shell-words.js';

export type CondaEnv = { kind: 'name'; name: string } | { kind: 'prefix'; prefix: string };

/** A line of the script, 1-based, as written. */
export interface ScriptLine {
  line: number;
  text: string;
}

export interface EnvUse extends ScriptLine {
  env: CondaEnv;
  /** How the line uses it: "conda activate", "source .../bin/activate", "conda run", "python by path". */
  how: string;
}

export type Edit =
  /** Delete [start, end): whole lines. */
  | { kind: 'delete'; start: number; end: number }
  /** Replace [start, end) with `:` (a command removed from inside a list or a compound). */
  | { kind: 'noop'; start: number; end: number }
  /** Replace [start, end) with the source text `text` (already as written by the user). */
  | { kind: 'splice'; start: number; end: number; text: string }
  /** Replace [start, end) with `RUNTIME exec ... IMAGE` followed by `tool` (quoted by the renderer) or, without tool, insert before `start`. */
  | { kind: 'exec'; start: number; end: number; tool?: string };

export interface Removal extends ScriptLine {
  why: string;
}

export interface Migration {
  /** The #! line, if the script has one. */
  shebang?: string;
  /** Every #SBATCH line sbatch reads (before the first command), verbatim. */
  directives: ScriptLine[];
  env: CondaEnv;
  envUses: EnvUse[];
  /** The script asks Slurm for GPUs (so `--nv`/`--rocm`). */
  gpus: boolean;
  edits: Edit[];
  removed: Removal[];
  /** Lines whose commands now run through the image. */
  rewritten: ScriptLine[];
  /**
   * Where site modules the image needs (module load apptainer) go: the start
   * of the first removed set-up line, else of the first command's line —
   * both at the top level of the script.
   */
  setupAt: number;
  /** What was assumed about the job's surroundings, in words. */
  assumptions: string[];
  warnings: string[];
}

export interface MigrationInput {
  text: string;
  /** The script's name for messages. */
  file: string;
  /** Absolute directory the job starts in (the submit directory, or #SBATCH --chdir). */
  startDir: string;
  /** Variables bash would see from outside (HOME, USER). */
  outside: Record<string, string>;
}

const CONDA_TOOLS = new Set(['conda', 'mamba', 'micromamba']);
const ML_SUBCOMMANDS = new Set(['load', 'add', 'unload', 'rm', 'del', 'purge', 'list', 'swap', 'switch', 'avail', 'av', 'spider', 'restore', 'save', 'show', 'help', 'use', 'unuse', 'reset', 'refresh', 'keyword', 'whatis']);
const PYTHON = /^python(\d+(\.\d+)?)?$/;
/** Modules that only provide conda or a host Python. */
const CONDA_MODULE = /^(ana|mini)conda\d*([/-].*)?$|^(miniforge|mambaforge|micromamba|mamba|conda)\d*([/-].*)?$|^python\d*([/-].*)?$/i;
const SYSTEM_PREFIX = /^(\/usr(\/local)?|\/bin|\/opt\/homebrew|)$/;
const CONDA_DIR = /conda|forge|mamba/i;

/** srun options that take the next word as their value (when written without =). */
const SRUN_ARG = new Set(
  ('A B C D G J L M N S T W c d e i m n o p q r t w x ' +
    '--account --acctg-freq --bb --bbf --begin --chdir --cluster-constraint --clusters --comment --constraint --container --container-id ' +
    '--core-spec --cores-per-socket --cpu-bind --cpu-freq --cpus-per-gpu --cpus-per-task --deadline --delay-boot --dependency --distribution ' +
    '--error --epilog --exclude --export --extra-node-info --gid --gpu-bind --gpu-freq --gpus --gpus-per-node --gpus-per-socket --gpus-per-task ' +
    '--gres --gres-flags --het-group --hint --input --job-name --jobid --licenses --mail-type --mail-user --mcs-label --mem --mem-bind ' +
    '--mem-per-cpu --mem-per-gpu --mincpus --mpi --network --nodefile --nodelist --nodes --ntasks --ntasks-per-core --ntasks-per-gpu ' +
    '--ntasks-per-node --ntasks-per-socket --open-mode --output --partition --power --prefer --prolog --qos --relative --reservation ' +
    '--signal --slurmd-debug --sockets-per-node --switches --task-epilog --task-prolog --thread-spec --threads-per-core --time --time-min ' +
    '--tmp --tres-bind --tres-per-task --uid --wait --wckey')
    .split(/\s+/)
    .map((o) => (o.startsWith('--') ? o : `-${o}`)),
);
/** mpirun/mpiexec (Open MPI, MPICH, Intel MPI) options with one value, and with two. */
const MPI_ARG = new Set(
  ('-n -np --np -c -N -npernode --npernode -ppn -perhost -H --host -host -hosts --hostfile -hostfile -machinefile --machinefile -machine -f -x ' +
    '--map-by -map-by --bind-to -bind-to --rank-by -rank-by -wdir --wdir -wd -wd --prefix -iface -launcher -bootstrap -rankfile --rankfile ' +
    '-genvlist -envlist --cpus-per-proc --cpus-per-rank -outfile-pattern -errfile-pattern --output-filename -configfile --mca-param-file -tune').split(' '),
);
const MPI_ARG2 = new Set(['-mca', '--mca', '-gmca', '--gmca', '-genv', '-env']);

/** Where a command word lies after launchers: `srun -n 4 python` → the python word. */
interface Launched {
  /** Index of the command word in the command's words, or -1 if none. */
  index: number;
  launchers: string[];
  gpus: boolean;
}

function baseName(w: Word, vars: ReadonlyMap<string, string>): string {
  return path.posix.basename(wordValue(w, vars).value);
}

/** Skips `srun [opts]`, `mpirun [opts]`, `env [-u X] [A=B]`, `exec`, `nohup`, `stdbuf -oL`, `timeout [opts] D` and assignments. */
function skipLaunchers(words: Word[], from: number, vars: ReadonlyMap<string, string>): Launched {
  const launchers: string[] = [];
  let gpus = false;
  let i = from;
  const isAssignment = (w: Word) => w.parts[0]?.kind === 'lit' && !w.parts[0].quoted && /^[A-Za-z_][A-Za-z0-9_]*\+?=/.test(w.parts[0].text);
  for (;;) {
    while (i < words.length && isAssignment(words[i]!)) i++;
    if (i >= words.length) return { index: -1, launchers, gpus };
    const name = literal(words[i]!) ?? '';
    const base = path.posix.basename(name);
    const opts = (takesArg: (o: string) => 1 | 2 | 0) => {
      i++;
      while (i < words.length) {
        const o = literal(words[i]!) ?? '';
        if (!o.startsWith('-') || o === '-') break;
        if (o === '--') {
          i++;
          break;
        }
        // srun --gpus=1, -G 1, --gres=gpu:1, --tres-per-task=gres/gpu:1 ask for GPUs too.
        const value = o.includes('=') ? o.slice(o.indexOf('=') + 1) : (literal(words[i + 1] ?? words[i]!) ?? '');
        if (/^(--gpus(-per-\w+)?(=|$)|-G)/.test(o) || (/^--(gres|tres-per-\w+)(=|$)/.test(o) && /gpu/.test(value))) gpus = true;
        const n = o.includes('=') ? 0 : takesArg(o);
        i += 1 + n;
      }
    };
    if (base === 'srun') {
      launchers.push('srun');
      // -n4 style: a short option with its value attached takes no extra word.
      opts((o) => (SRUN_ARG.has(o) ? 1 : 0));
    } else if (base === 'mpirun' || base === 'mpiexec' || base === 'mpiexec.hydra' || base === 'orterun') {
      launchers.push(base);
      opts((o) => (MPI_ARG2.has(o) ? 2 : MPI_ARG.has(o) ? 1 : 0));
    } else if (base === 'env' && i === from) {
      launchers.push('env');
      opts((o) => (o === '-u' || o === '--unset' || o === '-C' || o === '--chdir' || o === '-S' ? 1 : 0));
    } else if (base === 'timeout') {
      launchers.push('timeout');
      opts((o) => (o === '-s' || o === '--signal' || o === '-k' || o === '--kill-after' ? 1 : 0));
      i++; // the duration
    } else if (base === 'exec' || base === 'nohup' || base === 'stdbuf' || base === 'command') {
      launchers.push(base);
      opts(() => 0);
    } else return { index: i, launchers, gpus };
  }
}

function sameEnv(a: CondaEnv, b: CondaEnv): boolean {
  return a.kind === b.kind && (a.kind === 'name' ? a.name === (b as { name: string }).name : path.posix.normalize(a.prefix).replace(/\/$/, '') === path.posix.normalize((b as { prefix: string }).prefix).replace(/\/$/, ''));
}

export function describeEnv(env: CondaEnv): string {
  return env.kind === 'name' ? `the conda environment named ${env.name}` : `the conda environment at ${env.prefix}`;
}

/** GPUs asked for in #SBATCH lines: --gres=gpu..., --gpus*, -G, --tres-per-task=gres/gpu. */
function asksForGpus(directive: string): boolean {
  return /^#SBATCH\s+(--gres[=\s]\S*gpu|--gpus(-per-\w+)?[=\s]|-G\s*\S|--tres-per-\w+[=\s]\S*gpu)/.test(directive);
}

/**
 * Plans the migration of the job script `input.text`. Throws InputError
 * (exit 2) quoting the line when the script uses a venv, two environments,
 * python with no environment, or no python at all, or when bash could not
 * read it.
 */
export function planMigration(input: MigrationInput): Migration {
  const { text, file } = input;
  const crlf = text.indexOf('\r\n');
  if (crlf >= 0) {
    const n = text.slice(0, crlf).split('\n').length;
    throw new InputError(`${file}:${n}: the script has DOS line breaks (\\r\\n), which sbatch refuses and bash misreads: ${text.split('\n')[n - 1]!.replace(/\r$/, '')}`, {
      hint: `convert it first: dos2unix ${file} (or sed -i 's/\\r$//' ${file})`,
    });
  }
  const tokens = tokenize(text, file);
  const { lineStarts } = tokens;
  const lines = text.split('\n');
  const shebang = lines[0]?.startsWith('#!') ? lines[0] : undefined;
  const assumptions: string[] = [];
  const warnings: string[] = [];

  // #SBATCH lines count only before the first command (that is where sbatch stops reading).
  const firstCommandLine = tokens.commands.length ? lineOf(lineStarts, tokens.commands[0]!.start) : lines.length + 1;
  const directives: ScriptLine[] = [];
  let startDir = input.startDir;
  let startDirFrom = 'the directory the job is submitted from';
  for (let n = 1; n < firstCommandLine; n++) {
    const l = lines[n - 1]!;
    if (!/^#SBATCH\s/.test(l)) continue;
    directives.push({ line: n, text: l });
    const chdir = /^#SBATCH\s+(?:--chdir[=\s]|-D\s*)\s*(\S+)/.exec(l);
    if (chdir) {
      startDir = path.posix.resolve(input.startDir, chdir[1]!.replace(/^(['"])(.*)\1$/, '$2'));
      startDirFrom = `#SBATCH --chdir (line ${n})`;
    }
  }
  const gpusAsked = directives.some((d) => asksForGpus(d.text));

  const vars = new Map<string, string>(Object.entries(input.outside));
  vars.set('SLURM_SUBMIT_DIR', input.startDir);
  vars.set('PWD', startDir);
  let cwd: string | undefined = startDir;
  let usedSubmitDir = false;
  let usedRelative = false;

  const snippet = (c: SimpleCommand): ScriptLine => {
    const first = lineOf(lineStarts, c.start);
    const last = lineOf(lineStarts, Math.max(c.start, c.end - 1));
    const parts: string[] = [];
    for (let n = first; n <= last; n++) parts.push(lineText(text, lineStarts, n).trim());
    return { line: first, text: parts.join(' ') };
  };
  const fail = (c: SimpleCommand, what: string, hint: string): never => {
    const s = snippet(c);
    throw new InputError(`${file}:${s.line}: ${what}: ${s.text}`, { hint });
  };

  const envUses: EnvUse[] = [];
  const edits: Edit[] = [];
  const removed: Removal[] = [];
  const rewritten: ScriptLine[] = [];
  let active: EnvUse | undefined;
  const pythonWithoutEnv: SimpleCommand[] = [];
  const kept: SimpleCommand[] = [];
  let depth = 0;
  let gpus = gpusAsked;
  let firstRemovedLine: number | undefined;

  const remove = (c: SimpleCommand, why: string) => {
    const lineStart = lineStarts[lineOf(lineStarts, c.start) - 1]!;
    const nl = text.indexOf('\n', c.end);
    const lineEnd = nl < 0 ? text.length : nl;
    const alone = depth === 0 && c.parens === 0 && /^\s*$/.test(text.slice(lineStart, c.start)) && /^\s*(#.*)?$/.test(text.slice(c.end, lineEnd)) && (c.terminator === '\n' || c.terminator === '' || c.terminator === ';');
    if (alone) {
      edits.push({ kind: 'delete', start: lineStart, end: nl < 0 ? text.length : nl + 1 });
      firstRemovedLine ??= lineStart;
    }
    else edits.push({ kind: 'noop', start: c.start, end: c.end });
    removed.push({ ...snippet(c), why });
  };
  const useEnv = (c: SimpleCommand, env: CondaEnv, how: string): EnvUse => {
    const use = { ...snippet(c), env, how };
    envUses.push(use);
    return use;
  };
  /** A path given for an environment: resolved like bash and conda would. */
  const envPath = (c: SimpleCommand, w: Word, what: string): string => {
    const { value, unresolved } = wordValue(w, vars);
    if (unresolved.length) fail(c, `${what} ${w.raw} depends on ${unresolved.join(', ')}, which the script does not set`, 'set the variable earlier in the script, or write the path out');
    if (value.startsWith('/')) return path.posix.normalize(value);
    if (cwd === undefined) fail(c, `${what} ${w.raw} is relative, and an earlier cd makes the job's directory unknown`, 'write the environment as an absolute path');
    usedRelative = true;
    return path.posix.resolve(cwd!, value);
  };
  const envArg = (c: SimpleCommand, w: Word, forcePrefix: boolean): CondaEnv => {
    const v = wordValue(w, vars);
    // conda reads an argument with a / as a path, otherwise as a name.
    if (forcePrefix || v.value.includes('/') || v.unresolved.length) return { kind: 'prefix', prefix: envPath(c, w, 'the environment') };
    return { kind: 'name', name: v.value };
  };
  const setActive = (use: EnvUse) => {
    active = use;
    vars.set('CONDA_PREFIX', use.env.kind === 'prefix' ? use.env.prefix : `\0env:${use.env.name}`);
  };

  for (const c of tokens.commands) {
    const w = c.words;
    let k = 0;
    // Reserved words that open or continue a compound command.
    while (k < w.length) {
      const r = literal(w[k]!);
      if (r === 'if' || r === 'while' || r === 'until' || r === '{') depth++, k++;
      else if (r === 'then' || r === 'do' || r === 'else' || r === 'elif' || r === '!' || r === 'time' || (r === '-p' && literal(w[k - 1] ?? w[k]!) === 'time')) k++;
      else break;
    }
    const head = k < w.length ? literal(w[k]!) : undefined;
    if (head === 'fi' || head === 'done' || head === 'esac' || head === '}') {
      depth = Math.max(0, depth - 1);
      continue;
    }
    if (head === 'for' || head === 'select' || head === 'case') {
      depth++;
      continue;
    }
    if (k >= w.length) continue;
    const args = w.slice(k);
    const first = literal(args[0]!);

    // NAME=value lines and export NAME=value: remembered (at the top level only: a loop's value varies).
    const assignment = (word: Word) => {
      const p = word.parts[0];
      if (p?.kind !== 'lit' || p.quoted) return false;
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(p.text);
      if (!m) return false;
      if (depth === 0 && c.parens === 0) {
        const rest: Word = { ...word, parts: [{ ...p, text: p.text.slice(m[0].length) }, ...word.parts.slice(1)] };
        const v = wordValue(rest, vars);
        if (v.unresolved.length) vars.delete(m[1]!);
        else vars.set(m[1]!, v.value);
      }
      return true;
    };
    // (Not checked for references to the env below: an unused variable does no harm.)
    if (args.every((a) => assignment(a))) continue;
    if ((first === 'export' || first === 'readonly' || first === 'declare' || first === 'local' || first === 'typeset') && args.length > 1) {
      for (const a of args.slice(1)) assignment(a);
      kept.push(c);
      continue;
    }
    if (first === 'cd') {
      const target = args[1];
      if (!target) cwd = vars.get('HOME');
      else {
        const v = wordValue(target, vars);
        if (target.parts.some((p) => p.kind === 'var' && p.name === 'SLURM_SUBMIT_DIR')) usedSubmitDir = true;
        cwd = v.unresolved.length || depth > 0 || c.parens > 0 ? undefined : path.posix.resolve(cwd ?? '/', v.value);
        if (cwd !== undefined) vars.set('PWD', cwd);
      }
      kept.push(c);
      continue;
    }

    // module load anaconda3 / ml Miniforge3: drop the conda modules, keep the others.
    if (first === 'module' || first === 'ml') {
      // `ml NAME` loads; `ml purge`, `ml unload X`, ... are subcommands.
      const explicit = first === 'module' || ML_SUBCOMMANDS.has(literal(args[1] ?? args[0]!) ?? '');
      const sub = explicit ? literal(args[1] ?? args[0]!) : 'load';
      const names = (explicit ? args.slice(2) : args.slice(1)).filter((n) => !(literal(n) ?? '').startsWith('-'));
      if ((sub === 'load' || sub === 'add') && names.length) {
        const condaOnes = names.filter((n) => CONDA_MODULE.test(literal(n) ?? ''));
        if (condaOnes.length === names.length) {
          remove(c, 'loads only conda/Python, which the image now provides');
          continue;
        }
        if (condaOnes.length) {
          // Keep the command as written, minus the conda modules' words.
          const keep = w.filter((x) => !condaOnes.includes(x));
          edits.push({ kind: 'splice', start: c.start, end: c.end, text: [...keep.map((x) => x.raw), ...c.redirects.map((r) => r.raw)].join(' ') });
          removed.push({ ...snippet(c), why: `the modules ${condaOnes.map((x) => x.raw).join(' ')} only served conda` });
          continue;
        }
      }
      kept.push(c);
      continue;
    }

    // eval "$(conda shell.bash hook)" and friends.
    if (first === 'eval' && args.slice(1).some((a) => a.parts.some((p) => p.kind === 'expr' && /\b(conda|mamba|micromamba)\b[^|;&]*\bshell\b/.test(p.body) && /\bhook\b|\bshell\.\w+/.test(p.body)))) {
      remove(c, 'sets up conda in the shell');
      continue;
    }

    // source/. FILE [ARGS]
    if ((first === 'source' || first === '.') && args[1]) {
      const target = wordValue(args[1], vars).value;
      const base = path.posix.basename(target);
      if (/etc\/profile\.d\/(conda|mamba|micromamba)\.sh$/.test(target)) {
        remove(c, 'sets up conda in the shell');
        continue;
      }
      if (base === 'deactivate') {
        remove(c, 'deactivates the environment');
        active = undefined;
        continue;
      }
      if (base === 'activate') {
        const dir = path.posix.dirname(path.posix.dirname(target));
        if (args[2]) {
          setActive(useEnv(c, envArg(c, args[2], false), `source ${target.includes('/') ? '.../bin/activate' : 'activate'}`));
        } else if (!target.includes('/')) {
          // The old `source activate` (conda's, found on PATH) with no argument: its base environment.
          setActive(useEnv(c, { kind: 'name', name: 'base' }, 'source activate'));
        } else if (CONDA_DIR.test(path.posix.basename(dir))) {
          // conda's own bin/activate with no argument activates its base environment.
          setActive(useEnv(c, { kind: 'prefix', prefix: envPath(c, { ...args[1], parts: [{ kind: 'lit', text: dir, quoted: true }] }, 'the conda installation') }, 'source .../bin/activate (base)'));
        } else {
          fail(c, `this activates a plain virtual environment (venv), not a conda environment (no environment given to \`activate\`, and ${dir || target} is not a conda installation)`, 'sifpack migrate supports conda environments (for now); build the image from an environment.yml with `sifpack build` and `sifpack sbatch`');
        }
        remove(c, 'activated the environment on the host');
        continue;
      }
      kept.push(c);
      continue;
    }

    if (first === 'deactivate') {
      remove(c, 'deactivates the environment');
      active = undefined;
      continue;
    }

    const launched = skipLaunchers(args, 0, vars);
    if (launched.index < 0) {
      kept.push(c);
      continue;
    }
    const cmdWord = args[launched.index]!;
    const cmdBase = baseName(cmdWord, vars);

    // conda activate / deactivate / run
    if (CONDA_TOOLS.has(cmdBase)) {
      const sub = literal(args[launched.index + 1] ?? cmdWord);
      const rest = args.slice(launched.index + 2);
      if (sub === 'activate') {
        let env: CondaEnv | undefined;
        for (let j = 0; j < rest.length; j++) {
          const o = literal(rest[j]!);
          if (o === '-p' || o === '--prefix') env = envArg(c, rest[++j]!, true);
          else if (o === '-n' || o === '--name') env = envArg(c, rest[++j]!, false);
          else if (o?.startsWith('-')) continue;
          else env = envArg(c, rest[j]!, false);
        }
        setActive(useEnv(c, env ?? { kind: 'name', name: 'base' }, `${cmdBase} activate`));
        remove(c, 'activated the environment on the host');
        continue;
      }
      if (sub === 'deactivate') {
        remove(c, 'deactivates the environment');
        active = undefined;
        continue;
      }
      if (sub === 'run') {
        let env: CondaEnv | undefined;
        let j = 0;
        for (; j < rest.length; j++) {
          const o = literal(rest[j]!);
          if (o === '-p' || o === '--prefix') env = envArg(c, rest[++j]!, true);
          else if (o === '-n' || o === '--name') env = envArg(c, rest[++j]!, false);
          else if (o === '--cwd') fail(c, 'conda run --cwd is not supported', 'cd to the directory before the command instead');
          else if (o?.startsWith('-')) continue;
          else break;
        }
        const tool = rest[j];
        if (!tool) fail(c, `${cmdBase} run has no command`, 'give it the command to run');
        useEnv(c, env ?? (active ? active.env : { kind: 'name', name: 'base' }), `${cmdBase} run`);
        edits.push({ kind: 'exec', start: cmdWord.start, end: tool!.end, tool: baseName(tool!, vars) });
        rewritten.push(snippet(c));
        continue;
      }
      kept.push(c);
      continue;
    }

    // The command itself: python on PATH, or PREFIX/bin/TOOL.
    const { value, unresolved } = wordValue(cmdWord, vars);
    const bin = /^(.*)\/bin\/([^/]+)$/.exec(value);
    if (cmdWord.parts.some((p) => p.kind === 'expr' && /python/.test(p.body))) {
      fail(c, `sifpack cannot tell which program ${cmdWord.raw} is`, 'call python by name (python, python3) or by its path in the environment');
    }
    if (unresolved.length && !bin) {
      warnings.push(`line ${snippet(c).line} runs ${cmdWord.raw}, which sifpack cannot resolve: if it is the environment's python, it now runs on the host: ${snippet(c).text}`);
      kept.push(c);
      continue;
    }
    if (!cmdWord.raw.includes('/') && !value.includes('/') && PYTHON.test(value) && !unresolved.length) {
      if (!active) pythonWithoutEnv.push(c);
      else edits.push({ kind: 'exec', start: cmdWord.start, end: cmdWord.start });
      rewritten.push(snippet(c));
      gpus ||= launched.gpus;
      continue;
    }
    if (bin) {
      const [, prefixRaw, tool] = bin as unknown as [string, string, string];
      const named = /^\0env:(.*)$/.exec(prefixRaw);
      let env: CondaEnv | undefined;
      if (named) env = { kind: 'name', name: named[1]! };
      else if (unresolved.length && PYTHON.test(tool)) fail(c, `${cmdWord.raw} depends on ${unresolved.join(', ')}, which the script does not set`, 'set the variable earlier in the script, or write the path out');
      else if (!unresolved.length) {
        const prefix = prefixRaw.startsWith('/') ? path.posix.normalize(prefixRaw) : cwd !== undefined ? path.posix.resolve(cwd, prefixRaw) : undefined;
        if (prefix !== undefined && active?.env.kind === 'prefix' && sameEnv(active.env, { kind: 'prefix', prefix })) env = active.env;
        else if (prefix !== undefined && PYTHON.test(tool) && !SYSTEM_PREFIX.test(prefix)) {
          env = { kind: 'prefix', prefix };
          if (!prefixRaw.startsWith('/')) usedRelative = true;
        } else if (prefix === undefined && PYTHON.test(tool)) fail(c, `${cmdWord.raw} is a relative path, and an earlier cd makes the job's directory unknown`, 'write the environment as an absolute path');
      }
      if (env) {
        useEnv(c, env, `${tool} called by path`);
        edits.push({ kind: 'exec', start: cmdWord.start, end: cmdWord.end, tool });
        rewritten.push(snippet(c));
        gpus ||= launched.gpus;
        continue;
      }
    }
    kept.push(c);
  }

  // What is unclear or unsupported: say exactly what was found, and stop.
  const distinct: EnvUse[] = [];
  for (const u of envUses) if (!distinct.some((d) => sameEnv(d.env, u.env))) distinct.push(u);
  if (distinct.length > 1) {
    throw new InputError(`${file}: uses ${distinct.length} different environments; sifpack migrate runs one script in one image`, {
      details: distinct.map((u) => `line ${u.line}: ${u.text}  (${describeEnv(u.env)})`),
      hint: 'split the script into one job per environment, or use one environment throughout',
    });
  }
  const env = distinct[0]?.env;
  if (pythonWithoutEnv.length) {
    const c = pythonWithoutEnv[0]!;
    if (!env) fail(c, 'python runs here, but the script activates no conda environment, so it is the host\'s python', 'sifpack migrate moves a conda environment into an image; activate it in the script (conda activate NAME), or use `sifpack sbatch` for a fresh script');
    fail(c, `python runs here while no environment is active (${describeEnv(env!)} is activated on line ${distinct[0]!.line})`, 'activate the environment before every python command (or remove this one); sifpack will not guess which python it meant');
  }
  if (!env) throw new InputError(`${file}: no conda environment and no python command found: there is nothing to run in an image`, { hint: 'sifpack migrate rewrites scripts that activate a conda environment and run python in it' });
  if (!rewritten.length) {
    const u = distinct[0]!;
    throw new InputError(`${file}:${u.line}: the environment is activated here, but no python command (or other program of the environment) runs in it: ${u.text}`, {
      hint: 'sifpack migrate rewrites python, python3, "$prefix/bin/python", PREFIX/bin/TOOL, conda run and their srun/mpirun forms',
    });
  }

  // Kept lines that still point at the host's environment, and python it cannot reach.
  const prefixText = env.kind === 'prefix' ? env.prefix : undefined;
  for (const c of kept) {
    const raw = text.slice(c.start, c.end);
    const s = snippet(c);
    const values = c.words.map((w) => wordValue(w, vars).value).join(' ');
    if (/CONDA_PREFIX|CONDA_DEFAULT_ENV/.test(raw) || (prefixText && values.includes(prefixText))) warnings.push(`line ${s.line} still refers to the environment on the host, which the job no longer activates: ${s.text}`);
    if (c.words.some((w) => w.parts.some((p) => p.kind === 'expr' && /(^|[\s;&|(])(python[\d.]*)(\s|$)/.test(p.body)))) warnings.push(`line ${s.line} runs python inside a command substitution, which sifpack leaves as it is (on the host): ${s.text}`);
  }
  if (usedRelative) assumptions.push(`relative paths are read from ${startDir}: ${startDirFrom}${startDirFrom.startsWith('#SBATCH') ? '' : ' (Slurm starts a job there unless --chdir/-D says otherwise); sifpack assumes you submit from the script\'s directory'}`);
  if (usedSubmitDir) assumptions.push(`$SLURM_SUBMIT_DIR is taken to be ${input.startDir}, the script's directory (the directory you run sbatch from)`);

  edits.sort((a, b) => a.start - b.start);
  const firstCommand = tokens.commands[0]!;
  return {
    setupAt: firstRemovedLine ?? lineStarts[lineOf(lineStarts, firstCommand.start) - 1]!,
    ...(shebang !== undefined ? { shebang } : {}),
    directives,
    env,
    envUses,
    gpus,
    edits,
    removed,
    rewritten,
    assumptions,
    warnings,
  };
}
