/**
 * Registry passwords in the environment reach only the children that read
 * them (src/runtime/process.ts, childEnv): checked with real children, whose
 * environment `env -0` prints.
 */
import { describe, expect, it } from 'vitest';
import { APPTAINER_CREDENTIALS, CREDENTIAL_VARIABLES, NodeProcessRunner } from '../../src/runtime/process.js';

const env = { PATH: process.env.PATH, KEEP: 'kept', SIFPACK_REGISTRY_PASSWORD: 's3cret1', APPTAINER_DOCKER_PASSWORD: 's3cret2', SINGULARITY_DOCKER_PASSWORD: 's3cret3' };
const parse = (out: string) => Object.fromEntries(out.split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

describe('credential variables and children', () => {
  it('run() and stream() take every password variable out unless the child reads it', async () => {
    const runner = new NodeProcessRunner();
    const plain = parse((await runner.run('env', ['-0'], { env })).stdout);
    expect(plain.KEEP).toBe('kept');
    for (const v of CREDENTIAL_VARIABLES) expect(plain[v]).toBeUndefined();
    let streamed = '';
    await runner.stream('env', ['-0'], { env, passCredentials: APPTAINER_CREDENTIALS, onLine: (l) => (streamed += `${l}\n`) });
    const apptainer = parse(streamed.replace(/\n$/, ''));
    expect(apptainer.APPTAINER_DOCKER_PASSWORD).toBe('s3cret2');
    expect(apptainer.SINGULARITY_DOCKER_PASSWORD).toBe('s3cret3');
    expect(apptainer.SIFPACK_REGISTRY_PASSWORD).toBeUndefined(); // sifpack's own: never
  });
});
