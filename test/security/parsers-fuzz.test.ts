/**
 * Every parser of outside input, fed random and mutated text: the answer is a
 * value or a typed SifpackError (exit 2 / 1 with a message), never an
 * unhandled TypeError/RangeError/SyntaxError that the CLI would print as an
 * internal error. Seeds are real files from the repo (examples, captured tool
 * output, Slurm output captured from slurmctld 22.05). Bounded per parser in CI;
 * SIFPACK_FUZZ_SECONDS=60 runs each longer by hand.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { parsePreset } from '../../src/config/presets.js';
import { parseHistory } from '../../src/env/history.js';
import { parseRecord } from '../../src/env/prefix.js';
import { parseMetadataHeaders } from '../../src/env/site-packages.js';
import { parseExplicit } from '../../src/env/tool-export.js';
import { SifpackError } from '../../src/errors.js';
import { parseEnvironmentYaml } from '../../src/model/environment.js';
import { parseMatchSpec } from '../../src/model/match-spec.js';
import { readScriptFacts } from '../../src/model/sbatch-script.js';
import { readBuildStream } from '../../src/runtime/docker-build-stream.js';
import { parseParsable, parseSacct, parseScontrolJobs } from '../../src/runtime/slurm-parse.js';
import { ROOT } from '../helpers.js';
import { fuzzSeconds } from './in-process.js';

const read = (...p: string[]) => readFileSync(path.join(ROOT, ...p), 'utf8');
const dirFiles = (dir: string, re: RegExp) => readdirSync(path.join(ROOT, dir)).filter((f) => re.test(f)).map((f) => read(dir, f));

const SEEDS = {
  envYaml: [
    ...['pandas-analysis', 'gpu-pytorch', 'pip-heavy', 'array-sweep'].map((e) => read('examples', e, 'environment.yml')),
    ...dirFiles('test/fixtures/tool-output', /\.yml$/),
  ],
  explicit: dirFiles('test/fixtures/tool-output', /explicit\.txt$/),
  record: dirFiles('examples/pandas-analysis/envs/analysis/conda-meta', /\.json$/),
  history: [
    '==> 2024-03-01 10:00:00 <==\n# cmd: /opt/conda/bin/conda create -n analysis python=3.11 pandas\n# conda version: 24.1.2\n+conda-forge/linux-64::python-3.11.8-hab00c5b_0_cpython\n# update specs: ["python=3.11", "pandas"]\n',
    '==> 2024-03-02 09:00:00 <==\n# cmd: conda install -c bioconda samtools\n# update specs: [\'samtools\']\n# remove specs: []\n# neutered specs: []\n',
  ],
  metadata: ['Metadata-Version: 2.1\nName: labtools\nVersion: 0.4.2\nSummary: x\n\nlong description\n'],
  config: [
    'partition: debug\ntime: "30"\nbind: [/scratch]\nenv: { A: "1" }\nprofiles:\n  lumi:\n    partition: small-g\n    gpus: 1\n    module: [LUMI/24.03]\n',
  ],
  scontrol: dirFiles('test/fixtures/slurm', /^scontrol-.*\.txt$/),
  sacct: ['JobID|JobName|State|ExitCode|Elapsed|NodeList|Reason\n42|job|COMPLETED|0:0|00:00:05|node1|None\n43_1|arr|FAILED|3:0|00:00:01|node1|None\n'],
  script: [read('examples', 'pandas-analysis', 'expected', 'job.sbatch')],
  buildStream: [
    '{"stream":"Step 1/3 : FROM x\\n"}\n{"stream":" ---> 1234\\n"}\n{"aux":{"ID":"sha256:abcd"}}\n{"stream":"Successfully built 123456789abc\\n"}\n',
    '{"stream":"Step 2/3 : RUN false\\n"}\n{"errorDetail":{"code":1,"message":"returned a non-zero code: 1"},"error":"returned a non-zero code: 1"}\n',
    // well-formed JSON of the wrong shapes
    '{"stream":42}\n{"aux":{"ID":7}}\n{"status":{"a":1},"progress":[1]}\n[1,2]\nnull\n{"errorDetail":{"message":5}}\n',
  ],
};

/** A seed with random edits: inserted junk, cut slices, repeated or swapped lines. */
function mutated(seeds: string[]): fc.Arbitrary<string> {
  const edit = fc.oneof(
    fc.record({ k: fc.constant('insert' as const), at: fc.nat(), s: fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.constantFrom('\n', ':', '- ', '"', "'", '{', '[', ']', '}', '|', '=', '==>', '<==', '#', '\t', '\0', '\r\n', '@', '::', '!!binary', '*a', '&a', '---', '\\u0000')) }),
    fc.record({ k: fc.constant('cut' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 40 }) }),
    fc.record({ k: fc.constant('dupline' as const), at: fc.nat() }),
    fc.record({ k: fc.constant('swap' as const), a: fc.nat(), b: fc.nat() }),
  );
  return fc.tuple(fc.constantFrom(...seeds), fc.array(edit, { minLength: 1, maxLength: 6 })).map(([seed, edits]) => {
    let s = seed;
    for (const e of edits) {
      const at = s.length ? ('at' in e ? e.at % (s.length + 1) : 0) : 0;
      if (e.k === 'insert') s = s.slice(0, at) + e.s + s.slice(at);
      else if (e.k === 'cut') s = s.slice(0, at) + s.slice(at + e.n);
      else {
        const lines = s.split('\n');
        if (e.k === 'dupline') {
          const i = e.at % lines.length;
          lines.splice(i, 0, lines[i]!);
        } else {
          const a = e.a % lines.length;
          const b = e.b % lines.length;
          [lines[a], lines[b]] = [lines[b]!, lines[a]!];
        }
        s = lines.join('\n');
      }
    }
    return s;
  });
}

const input = (seeds: string[]) => fc.oneof({ weight: 4, arbitrary: mutated(seeds) }, { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 300 }) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) });

/** Runs `parse`; passes when it returns or throws a SifpackError. */
async function typedOrValue(parse: () => unknown): Promise<void> {
  try {
    await parse();
  } catch (err) {
    if (!(err instanceof SifpackError)) throw new Error(`untyped ${(err as Error)?.name}: ${(err as Error)?.message}\n${(err as Error)?.stack ?? ''}`);
    expect(err.message.length).toBeGreaterThan(0);
  }
}

const PARSERS: [string, string[], (text: string) => unknown][] = [
  ['environment.yml', SEEDS.envYaml, (t) => parseEnvironmentYaml(t, 'environment.yml')],
  ['@EXPLICIT lock', SEEDS.explicit, (t) => parseExplicit(t)],
  ['conda-meta/*.json', SEEDS.record, (t) => parseRecord(t, 'conda-meta/x.json')],
  ['conda-meta/history', SEEDS.history, (t) => parseHistory(t, 'conda-meta/history')],
  ['dist-info METADATA', SEEDS.metadata, (t) => parseMetadataHeaders(t)],
  ['sifpack.yml', SEEDS.config, (t) => parseConfig(t, 'sifpack.yml', '/tmp')],
  ['scontrol show job -o', SEEDS.scontrol, (t) => parseScontrolJobs(t)],
  ['sacct -P', SEEDS.sacct, (t) => parseSacct(t)],
  ['sbatch --parsable', ['42\n', '42;cluster\n'], (t) => parseParsable(t)],
  ['job script facts', SEEDS.script, (t) => readScriptFacts(t)],
  ['MatchSpec', ['numpy=1.26.4=py311h64a7726_0', 'conda-forge::pandas>=2,<3', 'python 3.11.*'], (t) => parseMatchSpec(t)],
  ['Docker build stream', SEEDS.buildStream, (t) => readBuildStream(Readable.from(t.match(/[\s\S]{1,17}/g) ?? []), () => {})],
];

describe('parsers never crash on random and mutated input', () => {
  for (const [name, seeds, parse] of PARSERS) {
    it(name, async () => {
      for (const s of seeds) await typedOrValue(() => parse(s)); // the seeds themselves
      await fc.assert(fc.asyncProperty(input(seeds), (t) => typedOrValue(() => parse(t))), { interruptAfterTimeLimit: fuzzSeconds(3) * 1000, numRuns: 1_000_000 });
    }, 120_000);
  }

  it('base presets: any parsed YAML value gives a preset or a typed error', async () => {
    const seeds = readdirSync(path.join(ROOT, 'defs')).map((f) => read('defs', f));
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(seeds).map((t) => { try { return YAML.parse(t, { logLevel: 'silent' }) as unknown; } catch { return t; } }), fc.jsonValue()), (raw) => typedOrValue(() => parsePreset('fuzz', raw, 'defs/fuzz.yml'))),
      { interruptAfterTimeLimit: fuzzSeconds(3) * 1000, numRuns: 1_000_000 },
    );
  }, 120_000);
});
