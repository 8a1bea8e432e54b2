import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../helpers.js';

export const CLI = path.join(ROOT, 'dist', 'cli.js');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as users do: a separate node process. */
export function sifpack(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Runs the CLI, waits until its stderr shows `marker` (then `delayMs` more),
 * sends SIGINT as Ctrl-C would, and resolves with the exit code.
 */
export function interruptWhen(args: string[], marker: string, delayMs: number, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stderr: string; msAfterSignal: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env } });
    let stderr = '';
    let sent = false;
    let sentAt = 0;
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (!sent && stderr.includes(marker)) {
        sent = true;
        setTimeout(() => {
          sentAt = Date.now();
          child.kill('SIGINT');
        }, delayMs);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stderr, msAfterSignal: sentAt ? Date.now() - sentAt : -1 }));
  });
}
