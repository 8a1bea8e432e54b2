/**
 * Reads the Docker engine's build output: newline-delimited JSON objects
 * ({"stream": "Step 2/6 : RUN ..."}, {"aux": {"ID": "sha256:..."}},
 * {"error": "...", "errorDetail": {...}}). A build fails by saying so in this
 * stream, not by a stream error, and a stream that just ends is not success:
 * only an image id (aux.ID, or "Successfully built") is.
 */
import type { Readable } from 'node:stream';
import { RuntimeFailure } from '../errors.js';

export interface BuildEvent {
  stream?: string;
  status?: string;
  progress?: string;
  id?: string;
  aux?: { ID?: string };
  error?: string;
  errorDetail?: { code?: number; message?: string };
}

export interface BuildOutcome {
  imageId: string;
  /** The text of every step's output, for a log file. */
  log: string[];
}

/** Consumes the stream; resolves with the image id, rejects with the failing step and its message. */
export async function readBuildStream(stream: Readable, onLine: (line: string) => void): Promise<BuildOutcome> {
  let buf = '';
  let imageId: string | undefined;
  let step: string | undefined;
  const log: string[] = [];
  const recent: string[] = [];

  const handle = (ev: BuildEvent) => {
    if (ev.error || ev.errorDetail) {
      const message = String(ev.errorDetail?.message ?? ev.error ?? 'unknown error').trim();
      throw new RuntimeFailure(`docker build failed${step ? ` at ${step}` : ''}: ${message}`, { details: recent.slice(-8) });
    }
    if (typeof ev.aux?.ID === 'string') imageId = ev.aux.ID;
    const text = typeof ev.stream === 'string' ? ev.stream : ev.status ? `${String(ev.status)}${ev.progress ? ` ${String(ev.progress)}` : ''}` : undefined;
    if (text === undefined) return;
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const s = /^Step \d+\/\d+ : .*/.exec(line);
      if (s) step = s[0].length > 120 ? `${s[0].slice(0, 117)}...` : s[0];
      const built = /^Successfully built ([0-9a-f]{12,})/.exec(line);
      if (built && !imageId) imageId = built[1];
      log.push(line);
      recent.push(line);
      if (recent.length > 20) recent.shift();
      onLine(line);
    }
  };

  const event = (line: string): BuildEvent => {
    let ev: unknown;
    try {
      ev = JSON.parse(line);
    } catch {
      throw new RuntimeFailure(`the Docker engine sent something that is not JSON: ${JSON.stringify(line.slice(0, 200))}`);
    }
    if (!ev || typeof ev !== 'object' || Array.isArray(ev)) throw new RuntimeFailure(`the Docker engine sent a line that is not a JSON object: ${JSON.stringify(line.slice(0, 200))}`);
    return ev as BuildEvent;
  };
  for await (const chunk of stream) {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) handle(event(line));
    }
  }
  if (buf.trim()) handle(event(buf.trim()));
  if (!imageId) throw new RuntimeFailure(`docker build ended without producing an image${step ? ` (last step: ${step})` : ''}`, { details: recent.slice(-8) });
  return { imageId, log };
}
