/**
 * NodeProcessRunner.stream with `processGroup`: a program that, like
 * `apptainer build` (internal/pkg/build/build.go, Full: on SIGINT/SIGTERM it
 * runs cleanUp and os.Exit(1) without stopping the %post it started), exits
 * on SIGTERM while a child it started keeps running and keeps its stdout
 * open. Real processes (sh, sleep), no doubles.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NodeProcessRunner } from '../../src/runtime/process.js';

/** Starts a `sleep` that holds stdout, says its pid, exits on SIGTERM leaving it behind. */
const BUILDER = 'trap "exit 1" TERM; sleep 300 & echo "child $!"; while :; do sleep 0.1; done';

/** Running, or stopped; a zombie (killed, not yet reaped by whoever inherited it) counts as gone. */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/**
 * Gone within a moment: the pipe closes while the killed process is still in
 * the kernel's exit path (files are closed before it turns zombie), so on a
 * busy machine the check right after can still see it running.
 */
async function goneSoon(pid: number): Promise<boolean> {
  const end = Date.now() + 2000;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

async function interrupted(processGroup: boolean): Promise<{ pid: number; ms: number; code: number; finished: boolean }> {
  const controller = new AbortController();
  let pid = 0;
  const started = Date.now();
  const done = new NodeProcessRunner().stream('sh', ['-c', BUILDER], {
    onLine: (l) => {
      const m = /^child (\d+)$/.exec(l);
      if (m) {
        pid = Number(m[1]);
        controller.abort();
      }
    },
    signal: controller.signal,
    processGroup,
  });
  // Without the group the promise only settles when the orphan closes the pipe: give up after 8 s.
  const r = await Promise.race([done.then((x) => ({ ...x, finished: true })), new Promise<{ code: number; finished: boolean }>((res) => setTimeout(() => res({ code: -1, finished: false }), 8000))]);
  return { pid, ms: Date.now() - started, code: r.code, finished: r.finished };
}

describe('stream(..., { processGroup }) on abort', () => {
  it('the whole group is stopped: the builder and the child it left behind, and the call returns at once', async () => {
    const r = await interrupted(true);
    expect(r.finished).toBe(true);
    expect(r.pid).toBeGreaterThan(0);
    expect(r.ms).toBeLessThan(5000); // SIGTERM to the group; the SIGKILL fallback (5 s) is not needed
    expect(await goneSoon(r.pid)).toBe(true);
  });

  it('without it (the old behaviour), the orphan keeps running and holds the pipe open', async () => {
    const r = await interrupted(false);
    expect(r.finished).toBe(false);
    expect(alive(r.pid)).toBe(true);
    execFileSync('kill', [String(r.pid)]);
  }, 20_000);

  it('a builder that exits by itself: what it left in its group is killed, so its pipes close', async () => {
    const started = Date.now();
    let pid = 0;
    const r = await new NodeProcessRunner().stream('sh', ['-c', 'sleep 300 & echo "child $!"; exit 0'], {
      onLine: (l) => {
        const m = /^child (\d+)$/.exec(l);
        if (m) pid = Number(m[1]);
      },
      processGroup: true,
    });
    expect(r.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await goneSoon(pid)).toBe(true);
  });
});
