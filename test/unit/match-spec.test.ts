import { describe, expect, it } from 'vitest';
import { parseMatchSpec } from '../../src/model/match-spec.js';

describe('parseMatchSpec', () => {
  it.each([
    ['numpy', { name: 'numpy' }],
    ['numpy=1.26', { name: 'numpy', version: '1.26' }],
    ['numpy==1.26.4', { name: 'numpy', version: '1.26.4' }],
    ['numpy=1.26.4=py311h64a7726_0', { name: 'numpy', version: '1.26.4', build: 'py311h64a7726_0' }],
    ['numpy>=1.2,<2', { name: 'numpy', version: '>=1.2,<2' }],
    ['numpy 1.26.* py311_0', { name: 'numpy', version: '1.26.*', build: 'py311_0' }],
    ['conda-forge::numpy', { channel: 'conda-forge', name: 'numpy' }],
    ['conda-forge/osx-64::pyyaml==6.0=py310h90acd4f_5[md5=e0ba2009f52ccda088c63dedf0d1c5ec]', { channel: 'conda-forge', subdir: 'osx-64', name: 'pyyaml', version: '6.0', build: 'py310h90acd4f_5' }],
    ['python_abi[build=*_cp313t]', { name: 'python_abi', build: '*_cp313t' }],
    ["numpy[version='>=1.2']", { name: 'numpy', version: '>=1.2' }],
    ['https://104.17.92.24:443::flask=1.0.2', { channel: 'https://104.17.92.24:443', name: 'flask', version: '1.0.2' }],
  ])('%s', (text, expected) => {
    expect(parseMatchSpec(text)).toEqual(expected);
  });

  it('returns undefined for text with no package name', () => {
    expect(parseMatchSpec('>=1.2')).toBeUndefined();
  });
});
