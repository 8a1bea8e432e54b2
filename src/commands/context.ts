/**
 * What every command receives: where to print, the environment, the working
 * directory and the process runner. Tests build one with recording doubles.
 */
import type { Command } from 'commander';
import type { ProcessRunner } from '../runtime/process.js';

export interface Output {
  write(chunk: string | Uint8Array): unknown;
}

export interface CliContext {
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
  cwd: string;
  runner: ProcessRunner;
}

/** Logs and warnings go to stderr, so stdout carries only the result. */
export class Log {
  constructor(private readonly out: Output, readonly quiet = false) {}
  info(msg: string): void {
    if (!this.quiet) this.out.write(`sifpack: ${msg}\n`);
  }
  warn(msg: string): void {
    this.out.write(`sifpack: warning: ${msg}\n`);
  }
}

/** Global options live on the root program: --config, --profile, --quiet. */
export function globalOptions(cmd: Command): { config?: string; profile?: string; quiet?: boolean } {
  let root = cmd;
  while (root.parent) root = root.parent;
  const own = cmd === root ? {} : cmd.opts();
  const pick = (k: 'config' | 'profile' | 'quiet') => own[k] ?? root.opts()[k];
  const out: { config?: string; profile?: string; quiet?: boolean } = {};
  for (const k of ['config', 'profile', 'quiet'] as const) if (pick(k) !== undefined) out[k] = pick(k);
  return out;
}
