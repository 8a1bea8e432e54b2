/**
 * A recording double of the process runner: it holds a script of expected
 * calls (exact argv) and the output each one replays. A call that differs
 * from the script fails the test; so does a script left unfinished.
 */
import type { ProcessResult, ProcessRunner, RunOptions } from '../../src/runtime/process.js';
import { ToolNotFoundError } from '../../src/errors.js';

export interface ScriptedCall {
  command: string;
  args: string[];
  result: Partial<ProcessResult>;
}

export class RecordingRunner implements ProcessRunner {
  readonly calls: { command: string; args: string[]; options?: RunOptions }[] = [];
  private readonly script: ScriptedCall[];

  constructor(script: ScriptedCall[], private readonly onPath: string[] = []) {
    this.script = [...script];
  }

  async which(command: string): Promise<string | undefined> {
    return this.onPath.includes(command) ? `/opt/recorded/bin/${command}` : undefined;
  }

  async run(command: string, args: readonly string[], options?: RunOptions): Promise<ProcessResult> {
    this.calls.push({ command, args: [...args], ...(options ? { options } : {}) });
    const next = this.script.shift();
    if (!next) throw new Error(`unexpected call: ${command} ${args.join(' ')}`);
    if (next.command !== command || JSON.stringify(next.args) !== JSON.stringify(args)) {
      throw new Error(`argv mismatch:\n  expected: ${next.command} ${JSON.stringify(next.args)}\n  actual:   ${command} ${JSON.stringify(args)}`);
    }
    if (!this.onPath.includes(command)) throw new ToolNotFoundError(command, options?.notFoundHint ?? '');
    return { code: 0, signal: null, stdout: '', stderr: '', ...next.result };
  }

  /** Fails when scripted calls were never made. */
  assertDone(): void {
    if (this.script.length > 0) throw new Error(`expected calls not made: ${this.script.map((s) => `${s.command} ${s.args.join(' ')}`).join('; ')}`);
  }
}
