import { spawn } from 'node:child_process';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { RuntimeFailure, SifpackError, ToolNotFoundError } from '../errors.js';

/** What a finished process gave back. */
export interface ProcessResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when `timeoutMs` ran out and the process was killed. */
  timedOut?: boolean;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. */
  input?: string;
  /** Shown when the program is not on PATH (e.g. "module load conda"). */
  notFoundHint?: string;
  /** Kill the process (SIGKILL) after this long and resolve with `timedOut` (probes of a hung service). */
  timeoutMs?: number;
  /** Credential variables (CREDENTIAL_VARIABLES) this child reads itself and so keeps; every other one is taken out. */
  passCredentials?: readonly string[];
}

/**
 * Environment variables that hold a registry password. A child sees only the
 * ones it reads itself (apptainer reads APPTAINER_DOCKER_PASSWORD to pull a
 * base image); SIFPACK_REGISTRY_PASSWORD is sifpack's own and reaches no
 * child: not mksquashfs, not unsquashfs, not sbatch (which would store it
 * with the job's environment in slurmctld's state directory).
 */
export const CREDENTIAL_VARIABLES = ['SIFPACK_REGISTRY_PASSWORD', 'APPTAINER_DOCKER_PASSWORD', 'SINGULARITY_DOCKER_PASSWORD'] as const;
/** What apptainer/singularity read to log in to a registry (to pull a base image). */
export const APPTAINER_CREDENTIALS: readonly string[] = ['APPTAINER_DOCKER_PASSWORD', 'SINGULARITY_DOCKER_PASSWORD'];

/** `env` without the credential variables the child does not read. */
export function childEnv(env: NodeJS.ProcessEnv, pass: readonly string[] = []): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const v of CREDENTIAL_VARIABLES) if (!pass.includes(v)) delete out[v];
  return out;
}

/**
 * The one way sifpack starts programs: an argument array, never a shell
 * string, so no value is ever re-parsed by a shell. Tests pass a recording
 * double with the same interface.
 */
export interface StreamOptions extends RunOptions {
  /** Called with each complete line of stdout and of stderr, as it arrives. */
  onLine: (line: string, stream: 'stdout' | 'stderr') => void;
  /** Aborting kills the child (SIGTERM, then SIGKILL after a grace period). */
  signal?: AbortSignal;
  /** Piped into the child's stdin (e.g. a tar stream into mksquashfs). */
  stdin?: Readable;
  /**
   * Run the child in a process group of its own and signal the whole group:
   * for programs whose children outlive them. `apptainer build` answers
   * SIGTERM by deleting its rootfs and exiting, while the %post shell it
   * started keeps running (and keeps its output pipes open). A terminal's
   * Ctrl-C reaches the whole foreground group; this does the same for the
   * builder's group, and kills what is left of it once the builder is gone.
   */
  processGroup?: boolean;
}

export interface ProcessRunner {
  run(command: string, args: readonly string[], options?: RunOptions): Promise<ProcessResult>;
  /** Runs a long command whose output is streamed line by line (builds). */
  stream(command: string, args: readonly string[], options: StreamOptions): Promise<{ code: number; signal: NodeJS.Signals | null }>;
  /** Absolute path of `command` on PATH, or undefined. */
  which(command: string, env?: NodeJS.ProcessEnv): Promise<string | undefined>;
}

/** Looks `command` up on PATH the way execvp does: first executable match wins. */
export async function findOnPath(command: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (command.includes('/')) return (await isExecutable(command)) ? command : undefined;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) return false;
    await fs.access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Runs real programs with child_process.spawn. */
export class NodeProcessRunner implements ProcessRunner {
  which(command: string, env?: NodeJS.ProcessEnv): Promise<string | undefined> {
    return findOnPath(command, env);
  }

  stream(command: string, args: readonly string[], options: StreamOptions): Promise<{ code: number; signal: NodeJS.Signals | null }> {
    return new Promise((resolve, reject) => {
      const group = !!options.processGroup;
      const child = spawn(command, [...args], { cwd: options.cwd, env: childEnv(options.env ?? process.env, options.passCredentials), stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: group });
      // The whole group when asked for (negative pid), else the child alone; a group already gone is fine.
      const kill = (sig: NodeJS.Signals) => {
        if (!group || child.pid === undefined) return void child.kill(sig);
        try {
          process.kill(-child.pid, sig);
        } catch {
          /* ESRCH: nothing left in the group */
        }
      };
      // sifpack exiting at once (a second Ctrl-C) must not leave the group running on its own.
      const onExit = () => kill('SIGKILL');
      if (group) process.once('exit', onExit);
      let stdinError: Error | undefined;
      if (options.stdin && child.stdin) {
        const input = options.stdin;
        // A child that exits early closes the pipe (EPIPE); its exit code tells why.
        child.stdin.on('error', () => undefined);
        input.on('error', (e: Error) => {
          stdinError = e;
          child.kill('SIGTERM');
        });
        input.pipe(child.stdin);
      }
      const split = (stream: 'stdout' | 'stderr') => {
        let rest = '';
        return {
          data: (b: Buffer) => {
            rest += b.toString('utf8');
            const lines = rest.split(/\r?\n|\r/);
            rest = lines.pop() ?? '';
            for (const l of lines) options.onLine(l, stream);
          },
          end: () => {
            if (rest) options.onLine(rest, stream);
            rest = '';
          },
        };
      };
      const out = split('stdout');
      const err = split('stderr');
      child.stdout?.on('data', out.data).on('end', out.end);
      child.stderr?.on('data', err.data).on('end', err.end);
      let killTimer: NodeJS.Timeout | undefined;
      const abort = () => {
        kill('SIGTERM');
        killTimer = setTimeout(() => kill('SIGKILL'), 5000);
      };
      // The builder has exited: whatever it started and left behind goes now, so its pipes close.
      if (group) child.on('exit', () => kill('SIGKILL'));
      options.signal?.addEventListener('abort', abort, { once: true });
      child.on('error', (e: NodeJS.ErrnoException) => {
        options.signal?.removeEventListener('abort', abort);
        if (group) process.off('exit', onExit);
        reject(e.code === 'ENOENT' ? new ToolNotFoundError(command, options.notFoundHint ?? `install ${command} or put it on PATH`) : new RuntimeFailure(`cannot run ${command}: ${e.message}`, { cause: e }));
      });
      child.on('close', (code, sig) => {
        options.signal?.removeEventListener('abort', abort);
        if (group) process.off('exit', onExit);
        if (killTimer) clearTimeout(killTimer);
        // A child that failed (disk full, bad input) closes its stdin: the EPIPE
        // that follows is a symptom, and the exit code and its lines say why.
        const pipeBroke = (stdinError as NodeJS.ErrnoException | undefined)?.code === 'EPIPE' && code !== 0;
        if (stdinError && !pipeBroke) reject(stdinError instanceof SifpackError ? stdinError : new RuntimeFailure(`the data streamed into ${path.basename(command)} broke off: ${stdinError.message}`, { cause: stdinError }));
        else resolve({ code: code ?? 128, signal: sig });
      });
    });
  }

  run(command: string, args: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(command, [...args], {
        cwd: options.cwd,
        env: childEnv(options.env ?? process.env, options.passCredentials),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = options.timeoutMs
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, options.timeoutMs)
        : undefined;
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e: NodeJS.ErrnoException) => {
        if (timer) clearTimeout(timer);
        if (e.code === 'ENOENT') {
          reject(new ToolNotFoundError(command, options.notFoundHint ?? `install ${command} or put it on PATH`));
        } else {
          reject(new RuntimeFailure(`cannot run ${command}: ${e.message}`, { cause: e }));
        }
      });
      child.on('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        resolve({
          code: code ?? 128,
          signal,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          ...(timedOut ? { timedOut } : {}),
        });
      });
      // A child that exits without reading stdin must not crash us with EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.input ?? '');
    });
  }
}
