/**
 * The SIF reader and `inspect` on mutated copies of apptainer-built images:
 * descriptor counts, offsets and sizes pointing past the end or overlapping,
 * huge `descriptors total`, zero-length partitions, flipped bytes, truncation.
 * Whatever the bytes, `inspect` ends with exit 0 or 2 and a message, never an
 * internal error, and within a second. Bounded run in CI (SIFPACK_FUZZ_SECONDS
 * makes it longer by hand); a failing case prints its fast-check seed.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DESCRIPTOR_SIZE, DESCRIPTORS_OFFSET } from '../../src/sif/layout.js';
import { ROOT, tempDir } from '../helpers.js';
import { fuzzSeconds, runInProcess } from './in-process.js';

const IMAGES = path.join(ROOT, 'test', 'fixtures', 'apptainer-images');
const NAMES = ['busybox_amd64.sif', 'empty.sif', 'one-group.sif', 'one-group-signed-pgp.sif'];

// Integer fields a corrupt or hostile file can carry (offset in the file, width).
const HEADER_FIELDS: [number, 4 | 8][] = [[64, 8], [72, 8], [80, 8], [88, 8], [96, 8], [104, 8], [112, 8], [120, 8]];
const DESCRIPTOR_FIELDS: [number, 1 | 4 | 8][] = [[0, 4], [4, 1], [5, 4], [9, 4], [13, 4], [17, 8], [25, 8], [33, 8], [41, 8], [57, 8], [201, 4], [205, 4]];

type Mutation =
  | { kind: 'field'; at: number; width: 1 | 4 | 8; value: bigint }
  | { kind: 'flip'; at: number; byte: number }
  | { kind: 'truncate'; to: number };

function apply(buf: Buffer, m: Mutation): Buffer {
  if (m.kind === 'truncate') return buf.subarray(0, Math.min(m.to, buf.length));
  const out = Buffer.from(buf);
  if (m.kind === 'flip') {
    if (m.at < out.length) out[m.at] = m.byte;
    return out;
  }
  if (m.at + m.width > out.length) return out;
  if (m.width === 1) out[m.at] = Number(m.value & 0xffn);
  else if (m.width === 4) out.writeUInt32LE(Number(BigInt.asUintN(32, m.value)), m.at);
  else out.writeBigInt64LE(BigInt.asIntN(64, m.value), m.at);
  return out;
}

function mutationArb(size: number): fc.Arbitrary<Mutation> {
  // Values that matter: around 0, around the file's size, huge and negative.
  const value = fc.oneof(
    fc.bigInt({ min: -4n, max: 64n }),
    fc.bigInt({ min: BigInt(size) - 4096n, max: BigInt(size) + 4096n }),
    fc.constantFrom(2n ** 31n - 1n, 2n ** 32n - 1n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 1_000_000n, 48n, 49n),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  );
  const headerField = fc.tuple(fc.constantFrom(...HEADER_FIELDS), value).map(([[at, width], v]): Mutation => ({ kind: 'field', at, width, value: v }));
  const descField = fc.tuple(fc.integer({ min: 0, max: 5 }), fc.constantFrom(...DESCRIPTOR_FIELDS), value).map(([slot, [off, width], v]): Mutation => ({ kind: 'field', at: DESCRIPTORS_OFFSET + slot * DESCRIPTOR_SIZE + off, width, value: v }));
  const flip = fc.record({ kind: fc.constant('flip' as const), at: fc.integer({ min: 0, max: Math.min(size - 1, 40_000) }), byte: fc.integer({ min: 0, max: 255 }) });
  const truncate = fc.record({ kind: fc.constant('truncate' as const), to: fc.oneof(fc.integer({ min: 0, max: 33_000 }), fc.integer({ min: 0, max: size })) });
  return fc.oneof({ weight: 3, arbitrary: headerField }, { weight: 5, arbitrary: descField }, { weight: 2, arbitrary: flip }, { weight: 1, arbitrary: truncate });
}

let dir: string;
const originals = new Map<string, Buffer>();
beforeAll(async () => {
  dir = await tempDir('sifpack-fuzz-');
  for (const n of NAMES) originals.set(n, await fs.readFile(path.join(IMAGES, n)));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function inspectBytes(bytes: Buffer, args: string[] = ['--json']) {
  const file = path.join(dir, 'mutated.sif');
  await fs.writeFile(file, bytes);
  return runInProcess(['inspect', file, ...args]);
}

function expectClean(r: { code: number; stderr: string; ms: number }, what: string): void {
  expect(r.stderr, what).not.toMatch(/internal error/);
  expect([0, 2], `${what}: exit ${r.code}\n${r.stderr}`).toContain(r.code);
  if (r.code === 2) expect(r.stderr, what).toMatch(/^sifpack: error: .+/m);
  expect(r.ms, `${what} took ${Math.round(r.ms)} ms`).toBeLessThan(1000);
}

describe('inspect on mutated apptainer images', () => {
  it('the originals inspect cleanly (the baseline the mutations start from)', async () => {
    for (const n of NAMES) {
      const r = await inspectBytes(originals.get(n)!);
      // empty.sif has no primary partition: apptainer cannot run it either.
      expect(r.code, `${n}: ${r.stderr}`).toBe(n === 'empty.sif' ? 2 : 0);
      expect(r.stderr).not.toMatch(/internal error/);
    }
  });

  it('targeted corruptions give exit 2 with a message that says what is wrong', async () => {
    const base = originals.get('one-group.sif')!;
    const cases: [string, Mutation, RegExp][] = [
      ['huge descriptors total', { kind: 'field', at: 88, width: 8, value: 2n ** 62n }, /corrupt SIF header|truncated/],
      ['descriptor table past the end', { kind: 'field', at: 96, width: 8, value: 2n ** 40n }, /truncated|corrupt/],
      ['object offset past the end', { kind: 'field', at: DESCRIPTORS_OFFSET + 17, width: 8, value: BigInt(base.length) + 1n }, /ends at byte|past the end|truncated/],
      ['negative object size', { kind: 'field', at: DESCRIPTORS_OFFSET + 25, width: 8, value: -5n }, /negative|corrupt|truncated/],
      ['truncated header', { kind: 'truncate', to: 100 }, /truncated SIF|not a SIF/],
      ['no magic', { kind: 'flip', at: 32, byte: 0x58 }, /not a SIF image/],
    ];
    for (const [what, m, re] of cases) {
      const r = await inspectBytes(apply(base, m));
      expectClean(r, what);
      expect(r.code, what).toBe(2);
      expect(r.stderr, what).toMatch(re);
    }
  });

  it('random mutations never crash, hang or report an internal error', async () => {
    const seconds = fuzzSeconds(30);
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...NAMES).chain((n) => fc.tuple(fc.constant(n), fc.array(mutationArb(originals.get(n)!.length), { minLength: 1, maxLength: 4 }))),
        fc.boolean(),
        async ([name, muts], json) => {
          runs++;
          let bytes = originals.get(name)!;
          for (const m of muts) bytes = apply(bytes, m);
          const r = await inspectBytes(bytes, json ? ['--json'] : []);
          expectClean(r, `${name} with ${JSON.stringify(muts, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
        },
      ),
      { interruptAfterTimeLimit: seconds * 1000, numRuns: 1_000_000 },
    );
    expect(runs).toBeGreaterThan(20);
  }, 120_000);
});
