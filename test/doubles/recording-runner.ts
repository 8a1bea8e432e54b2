/**
 * A recording double of the process runner: it holds a script of expected
 * calls (exact argv) and the output each one replays. A call that differs
 * from the script fails the test; so does a script left unfinished.
 */
import type { ProcessResult, ProcessRunner, RunOptions, StreamOptions } from '../../src/runtime/process.js';
import { ToolNotFoundError } from '../../src/errors.js';

export interface ScriptedCall {
  command: string;
  /** Exact argv; a RegExp element matches a generated value (a temp file name). */
  args: (string | RegExp)[];
  result: Partial<ProcessResult>;
  /** Runs when the call is made, e.g. to write the file the real tool would, or to check env and cwd. */
  effect?: (args: string[], options: RunOptions | undefined) => Promise<void> | void;
  /** For stream(): wait on this before finishing, to test interruption. */
  hold?: (signal: AbortSignal | undefined) => Promise<void>;
}

export class RecordingRunner implements ProcessRunner {
  readonly calls: { command: string; args: string[]; options?: RunOptions }[] = [];

  async stream(command: string, args: readonly string[], options: StreamOptions): Promise<{ code: number; signal: NodeJS.Signals | null }> {
    const next = await this.take(command, args, options);
    for (const line of (next.result.stdout ?? '').split('\n').filter(Boolean)) options.onLine(line, 'stdout');
    for (const line of (next.result.stderr ?? '').split('\n').filter(Boolean)) options.onLine(line, 'stderr');
    if (next.hold) await next.hold(options.signal);
    if (options.signal?.aborted) return { code: 143, signal: 'SIGTERM' };
    return { code: next.result.code ?? 0, signal: next.result.signal ?? null };
  }
  private readonly script: ScriptedCall[];

  constructor(script: ScriptedCall[], private readonly onPath: string[] = []) {
    this.script = [...script];
  }

  async which(command: string): Promise<string | undefined> {
    return this.onPath.includes(command) ? `/opt/recorded/bin/${command}` : undefined;
  }

  private async take(command: string, args: readonly string[], options?: RunOptions): Promise<ScriptedCall> {
    this.calls.push({ command, args: [...args], ...(options ? { options } : {}) });
    const next = this.script.shift();
    if (!next) throw new Error(`unexpected call: ${command} ${args.join(' ')}`);
    const same = next.args.length === args.length && next.args.every((a, i) => (a instanceof RegExp ? a.test(args[i]!) : a === args[i]));
    if (next.command !== command || !same) {
      throw new Error(`argv mismatch:\n  expected: ${next.command} ${JSON.stringify(next.args.map(String))}\n  actual:   ${command} ${JSON.stringify(args)}`);
    }
    if (!this.onPath.includes(command) && !this.onPath.includes(command.split('/').at(-1)!)) throw new ToolNotFoundError(command, options?.notFoundHint ?? '');
    await next.effect?.([...args], options);
    return next;
  }

  async run(command: string, args: readonly string[], options?: RunOptions): Promise<ProcessResult> {
    const next = await this.take(command, args, options);
    return { code: 0, signal: null, stdout: '', stderr: '', ...next.result };
  }

  /** Fails when scripted calls were never made. */
  assertDone(): void {
    if (this.script.length > 0) throw new Error(`expected calls not made: ${this.script.map((s) => `${s.command} ${s.args.join(' ')}`).join('; ')}`);
  }
}
