/**
 * Typed errors. Every failure the user can act on is one of these: a message
 * that names the file, field or flag, an optional hint saying what to do, and
 * the exit code the CLI ends with. One top-level handler in cli.ts prints them;
 * anything else is a bug and prints its stack.
 */

/** Exit codes shared by every command (DESIGN.md: Conventions). */
export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

export interface ErrorDetails {
  /** What the user can do about it, printed on its own line after the message. */
  hint?: string;
  /** Extra lines that matter (a tool's FATAL lines, a list of places looked at). */
  details?: string[];
  cause?: unknown;
}

export class SifpackError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;
  readonly details: string[];

  constructor(message: string, exitCode: number, extra: ErrorDetails = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.hint = extra.hint;
    this.details = extra.details ?? [];
  }
}

/** Bad flags, bad input files, bad settings: exit 2, nothing written. */
export class InputError extends SifpackError {
  constructor(message: string, extra: ErrorDetails = {}) {
    super(message, EXIT.usage, extra);
  }
}

/** Something outside failed (a tool, a service, the file system): exit 1. */
export class RuntimeFailure extends SifpackError {
  constructor(message: string, extra: ErrorDetails = {}) {
    super(message, EXIT.failure, extra);
  }
}

/**
 * The command printed its result, and the result is a failure (a watched job
 * that did not complete): exit 1 with this message on stderr, but no JSON
 * error object, since stdout already holds the one result.
 */
export class ResultIsFailure extends RuntimeFailure {}

/** A required program is not on PATH. */
export class ToolNotFoundError extends RuntimeFailure {
  readonly tool: string;
  constructor(tool: string, hint: string) {
    super(`${tool} not found on PATH`, { hint });
    this.tool = tool;
  }
}

/** Formats an error for stderr: message, details indented, then the hint. */
export function formatError(err: SifpackError): string {
  const lines = [`sifpack: error: ${err.message}`];
  for (const d of err.details) lines.push(`  ${d}`);
  if (err.hint) lines.push(`hint: ${err.hint}`);
  return lines.join('\n');
}
