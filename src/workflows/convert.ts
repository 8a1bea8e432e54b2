/**
 * Docker image → SIF without apptainer, streaming end to end:
 *
 *   docker export (temporary container) → tar transform (+ /.singularity.d)
 *     → mksquashfs -tar -offset P (writes straight into the SIF file)
 *     → descriptors and header written in front → atomic rename
 *
 * No root filesystem is unpacked on disk and memory stays flat whatever the
 * image's size. When mksquashfs cannot read tar (older than 4.5), tar2sqfs
 * writes a temporary squashfs that is then streamed into place.
 */
import { createReadStream, promises as fs } from 'node:fs';
import { EXIT, RuntimeFailure, SifpackError, ToolNotFoundError } from '../errors.js';
import type { DockerEngine } from '../runtime/docker.js';
import { requireImage } from '../runtime/docker.js';
import type { ProcessRunner } from '../runtime/process.js';
import { type TransformReport, transformRootfs } from '../runtime/rootfs-stream.js';
import { ARCH_CODES, DataType } from '../sif/layout.js';
import { type ImageConfig, dockerEnvScript, rootfsMetadata, runscript } from '../sif/rootfs-metadata.js';
import { SifWriter } from '../sif/writer.js';
import { writeFailure } from '../util/atomic-write.js';

export type Compression = 'gzip' | 'zstd' | 'xz';

export interface ConvertRequest {
  image: string;
  output: string;
  compression: Compression;
  force: boolean;
  sifpackVersion: string;
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
  now?: Date;
  /** Extra labels (sifpack build adds its own). */
  labels?: Record<string, string>;
}

export interface ConvertResult {
  output: string;
  size: number;
  squashfsBytes: number;
  entries: number;
  seconds: number;
  squasher: 'mksquashfs' | 'tar2sqfs';
}

/** The JSON apptainer stores as inspect-metadata.json, so `apptainer inspect` works without unpacking. */
export function inspectMetadata(cfg: ImageConfig, deffile: string, labels: Record<string, string>): object {
  return {
    data: {
      attributes: {
        deffile,
        environment: {
          '/.singularity.d/env/10-docker2singularity.sh': dockerEnvScript(cfg.Env ?? []),
          '/.singularity.d/env/90-environment.sh': '#!/bin/sh\n# Custom environment shell code should follow\n',
        },
        labels,
        runscript: runscript(cfg),
        startscript: '#!/bin/sh\n',
      },
    },
    type: 'container',
  };
}

/** The image config as apptainer stores it in oci-config.json (empty fields left out). */
export function ociConfig(cfg: ImageConfig): object {
  const out: Record<string, unknown> = {};
  for (const k of ['User', 'Env', 'Entrypoint', 'Cmd', 'WorkingDir', 'Labels'] as const) {
    const v = cfg[k];
    if (v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0)) out[k] = v;
  }
  return out;
}

async function pickSquasher(runner: ProcessRunner): Promise<{ name: 'mksquashfs' | 'tar2sqfs'; path: string }> {
  const mk = await runner.which('mksquashfs');
  if (mk) {
    const help = await runner.run(mk, ['-help']);
    if (/^-tar\b/m.test(help.stdout + help.stderr)) return { name: 'mksquashfs', path: mk };
  }
  const t2 = await runner.which('tar2sqfs');
  if (t2) return { name: 'tar2sqfs', path: t2 };
  throw new ToolNotFoundError('mksquashfs', 'install squashfs-tools (4.5 or newer) or squashfs-tools-ng (tar2sqfs): `apt install squashfs-tools`');
}

export async function convertImage(engine: DockerEngine, runner: ProcessRunner, req: ConvertRequest): Promise<ConvertResult> {
  const started = Date.now();
  const info = await requireImage(engine, req.image);
  const squasher = await pickSquasher(runner);
  const arch = ARCH_CODES[info.architecture] ? info.architecture : 'unknown';
  const deffile = `bootstrap: docker-daemon\nfrom: ${req.image}\n`;
  const labels: Record<string, string> = {
    ...Object.fromEntries(Object.entries(info.config.Labels ?? {}).map(([k, v]) => [k, String(v)])),
    'org.label-schema.build-arch': arch,
    'org.label-schema.usage.singularity.deffile.bootstrap': 'docker-daemon',
    'org.label-schema.usage.singularity.deffile.from': req.image,
    'sifpack.converted-by': `sifpack ${req.sifpackVersion}`,
    ...req.labels,
  };
  const writer = await SifWriter.create(req.output, { force: req.force, ...(req.now ? { now: req.now } : {}) });
  const report: TransformReport = { entries: 0, bytes: 0, replaced: [] };
  let tmpSquash: string | undefined;
  try {
    writer.addObject(DataType.Deffile, Buffer.from(deffile));
    writer.addObject(DataType.GenericJSON, Buffer.from(JSON.stringify(inspectMetadata(info.config, deffile, labels))), { name: 'inspect-metadata.json' });
    writer.addObject(DataType.GenericJSON, Buffer.from(JSON.stringify(ociConfig(info.config))), { name: 'oci-config.json' });
    const offset = writer.partitionOffset();
    const metadata = rootfsMetadata(info.config, deffile, labels);
    req.onProgress?.(`exporting ${req.image} (${(info.size / 2 ** 20).toFixed(0)} MiB) into ${squasher.name}`);

    const lines: string[] = [];
    await engine.withExport(
      req.image,
      async (exported) => {
        const rootfs = transformRootfs(exported, metadata, report);
        const common = { stdin: rootfs, onLine: (l: string) => lines.push(l), ...(req.signal ? { signal: req.signal } : {}) };
        let res: { code: number };
        if (squasher.name === 'mksquashfs') {
          // -offset: the squashfs goes straight into the SIF at its aligned place.
          res = await runner.stream(squasher.path, ['-', writer.tmp, '-tar', '-offset', String(offset), '-noappend', '-comp', req.compression, '-root-mode', '755', '-quiet', '-no-progress'], common);
        } else {
          tmpSquash = `${writer.tmp}.squashfs`;
          res = await runner.stream(squasher.path, ['--compressor', req.compression, '--quiet', '--force', tmpSquash], common);
        }
        if (req.signal?.aborted) throw new SifpackError('conversion interrupted; no image written', EXIT.interrupted);
        if (res.code !== 0 && lines.some((l) => /no space left on device/i.test(l))) throw writeFailure(writer.target, Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }));
        if (res.code !== 0) throw new RuntimeFailure(`${squasher.name} failed (exit ${res.code})`, { details: lines.slice(-8) });
      },
      req.signal,
    );
    const squashfsBytes = tmpSquash ? Number(await writer.writePartition(createReadStream(tmpSquash), { arch })) : Number(await writer.adoptPartition({ arch }));
    const { size } = await writer.finish();
    return { output: writer.target, size, squashfsBytes, entries: report.entries, seconds: (Date.now() - started) / 1000, squasher: squasher.name };
  } catch (err) {
    await writer.abort();
    if (req.signal?.aborted && !(err instanceof SifpackError && err.exitCode === EXIT.interrupted)) {
      throw new SifpackError('conversion interrupted; no image written', EXIT.interrupted);
    }
    throw err;
  } finally {
    if (tmpSquash) await fs.rm(tmpSquash, { force: true });
  }
}
