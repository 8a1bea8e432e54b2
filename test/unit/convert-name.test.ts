/** `convert IMAGE` without -o names the file as `apptainer pull docker://IMAGE` does (uri.go GetName). */
import { describe, expect, it } from 'vitest';
import { defaultSifName } from '../../src/commands/convert.js';

describe('convert default output name', () => {
  it.each([
    ['ubuntu', 'ubuntu_latest.sif'],
    ['ubuntu:22.04', 'ubuntu_22.04.sif'],
    ['sylabsio/lolcow', 'lolcow_latest.sif'],
    ['127.0.0.1:5000/lab/analysis:3f2a1b0c', 'analysis_3f2a1b0c.sif'],
    ['sifpack-test/busybox:1', 'busybox_1.sif'],
  ])('%s → %s', (image, name) => {
    expect(defaultSifName(image)).toBe(name);
  });
});
