/**
 * build --json on a cache hit reports what really built the image, read from
 * its labels: real images' labels (apptainer's busybox fixture, a sifpack
 * convert output shape) rather than a fixed "apptainer".
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NodeProcessRunner } from '../../src/runtime/process.js';
import { imageLabels } from '../../src/runtime/image-labels.js';
import { builderFromLabels } from '../../src/workflows/build.js';
import { APPTAINER_IMAGES } from '../helpers.js';

describe('which builder made an image', () => {
  it('an image singularity 3.8 built from a Docker source: singularity', async () => {
    const { labels } = await imageLabels(path.join(APPTAINER_IMAGES, 'busybox_amd64.sif'), new NodeProcessRunner());
    expect(labels?.['org.label-schema.usage.singularity.version']).toBe('3.8.1');
    expect(builderFromLabels(labels!)).toBe('singularity');
  });

  it('a SIF made from a Docker image (sifpack convert or apptainer docker-daemon): docker', () => {
    expect(builderFromLabels({ 'org.label-schema.usage.singularity.deffile.bootstrap': 'docker-daemon', 'sifpack.converted-by': 'sifpack 0.1.0' })).toBe('docker');
  });

  it('apptainer docker-daemon:// of the image a Docker build tagged: docker', () => {
    expect(builderFromLabels({ 'org.label-schema.usage.apptainer.version': '1.4.5', 'org.label-schema.usage.singularity.deffile.bootstrap': 'docker-daemon', 'org.label-schema.usage.singularity.deffile.from': 'sifpack/analysis:0123456789ab', 'sifpack.base-image': 'mambaorg/micromamba:2.3.2-debian12-slim' })).toBe('docker');
  });

  it('a def file apptainer built with Bootstrap: docker-daemon from the base image (labels of a real 1.4.5 build): apptainer', () => {
    // `sifpack build --from-prefix P --builder apptainer --bootstrap docker-daemon`, labels from `apptainer inspect --labels`.
    expect(builderFromLabels({ 'org.label-schema.usage.apptainer.version': '1.4.5', 'org.label-schema.usage.singularity.deffile.bootstrap': 'docker-daemon', 'org.label-schema.usage.singularity.deffile.from': 'sifpack-test/bookworm-python:12', 'sifpack.base-image': 'sifpack-test/bookworm-python:12' })).toBe('apptainer');
  });

  it('apptainer names itself', () => {
    expect(builderFromLabels({ 'org.label-schema.usage.apptainer.version': '1.4.5', 'org.label-schema.usage.singularity.deffile.bootstrap': 'docker' })).toBe('apptainer');
  });
});
