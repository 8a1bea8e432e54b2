/**
 * The real Docker engine passes a RUN step's colour codes through in its
 * build stream. On a log (stderr not a terminal) sifpack's lines carry none
 * of them; a failing step's message is plain text too.
 */
import { describe, expect, it } from 'vitest';
import { Progress } from '../../src/commands/progress.js';
import { packContext } from '../../src/runtime/build-context.js';
import { DockerodeEngine } from '../../src/runtime/docker.js';
import { stripAnsi } from '../../src/util/ansi.js';
import { service } from '../helpers.js';

const COLOUR_RUN = `RUN printf '\\033[1;31mred step output\\033[0m and \\033[32mgreen\\033[0m\\n'`;

describe('Docker build output without colour codes when stderr is not a terminal', () => {
  it('a RUN step that prints colours: the engine sends ESC codes; the log lines have none', async () => {
    service('DOCKER_HOST');
    const engine = new DockerodeEngine();
    const seen: string[] = [];
    const written: string[] = [];
    const progress = new Progress({ write: (s: string | Uint8Array) => written.push(String(s)), isTTY: false });
    await engine.build(packContext([{ name: 'Dockerfile', data: `FROM ${service('SIFPACK_TEST_BUSYBOX_IMAGE')}\n# no cache: the step must really run\nRUN echo ${Date.now()}-${Math.random()}\n${COLOUR_RUN}\n` }], []), {
      tag: 'issue14-colour:1',
      labels: {},
      network: 'none',
      onLine: (l: string) => {
        seen.push(l);
        progress.update(l);
      },
    });
    // The engine really sends the escape codes: the case this is about.
    expect(seen.some((l) => l.includes('\x1b[1;31m'))).toBe(true);
    const log = written.join('');
    expect(log).toContain('red step output and green');
    expect(log).not.toContain('\x1b');
    await engine.docker.getImage('issue14-colour:1').remove().catch(() => undefined);
  }, 120_000);

  it('a failing step: the error message and the lines shown with it are plain', async () => {
    const engine = new DockerodeEngine();
    const err = (await engine
      .build(packContext([{ name: 'Dockerfile', data: `FROM ${service('SIFPACK_TEST_BUSYBOX_IMAGE')}\nRUN printf '\\033[31mboom\\033[0m\\n' && exit 3\n` }], []), { tag: 'issue14-colour:2', labels: {}, network: 'none', onLine: () => undefined })
      .catch((e: unknown) => e)) as { message: string; details: string[] };
    expect(err.message).toMatch(/docker build failed/);
    expect(err.details.join('\n')).toContain('boom');
    expect(`${err.message}${err.details.join('')}`).not.toContain('\x1b');
  }, 120_000);

  it('stripAnsi leaves plain text alone and removes CSI/OSC sequences', () => {
    expect(stripAnsi('plain [1] text')).toBe('plain [1] text');
    expect(stripAnsi('\x1b[1;31mred\x1b[0m \x1b]0;title\x07x')).toBe('red x');
  });
});
