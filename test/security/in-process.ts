/**
 * Runs the CLI's main() in this process (no node start-up per call), for
 * tests that run a command hundreds of times. Same code path as the binary
 * after argv parsing; the real process runner, so child tools are real too.
 */
import { main } from '../../src/cli.js';
import { NodeProcessRunner } from '../../src/runtime/process.js';

export interface InProcessRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export async function runInProcess(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<InProcessRun> {
  let stdout = '';
  let stderr = '';
  const t0 = performance.now();
  const code = await main(args, {
    stdout: { write: (s: string | Uint8Array) => (stdout += s.toString()) },
    stderr: { write: (s: string | Uint8Array) => (stderr += s.toString()) },
    env: opts.env ?? { PATH: process.env.PATH, HOME: process.env.HOME },
    cwd: opts.cwd ?? process.cwd(),
    runner: new NodeProcessRunner(),
  });
  return { code, stdout, stderr, ms: performance.now() - t0 };
}

/** Seconds a fuzz property may run: short in CI, longer by hand (SIFPACK_FUZZ_SECONDS=300). */
export function fuzzSeconds(ciDefault: number): number {
  const v = Number(process.env.SIFPACK_FUZZ_SECONDS);
  return Number.isFinite(v) && v > 0 ? v : ciDefault;
}
