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
import path from 'node:path';
import { EXIT, RuntimeFailure, SifpackError, ToolNotFoundError } from '../errors.js';
import type { DockerEngine } from '../runtime/docker.js';
import { requireImage } from '../runtime/docker.js';
import type { ProcessRunner } from '../runtime/process.js';
import { type TransformReport, transformRootfs } from '../runtime/rootfs-stream.js';
import { ARCH_CODES, DataType } from '../sif/layout.js';
import { ENVIRONMENT_SH, STARTSCRIPT, type ImageConfig, dockerEnvScript, rootfsMetadata, runscript } from '../sif/rootfs-metadata.js';
import { SifWriter } from '../sif/writer.js';
import { sweepStaleTemps, writeFailure } from '../util/atomic-write.js';

export type Compression = 'gzip' | 'zstd' | 'xz';

export interface ConvertRequest {
  image: string;
  output: string;
  compression: Compression;
  force: boolean;
  sifpackVersion: string;
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
  /** Called about twice a second while the root filesystem streams: bytes so far, and the image's size. */
  onBytes?: (done: number, total: number) => void;
  now?: Date;
  /** Extra labels (sifpack build adds its own). */
  labels?: Record<string, string>;
  /** Scratch for a squashfs written before it goes into the SIF (tar2sqfs only); default beside the output. */
  tmpdir?: string;
}

export interface ConvertResult {
  output: string;
  size: number;
  squashfsBytes: number;
  entries: number;
  seconds: number;
  squasher: 'mksquashfs' | 'tar2sqfs';
}

/**
 * The JSON apptainer stores as inspect-metadata.json, so `apptainer inspect` works without
 * unpacking. apptainer fills it from `inspect --all`, which trims each text's trailing newlines.
 */
export function inspectMetadata(cfg: ImageConfig, deffile: string, labels: Record<string, string>, helpfile?: string): object {
  const trim = (s: string) => s.replace(/\n+$/, '');
  return {
    data: {
      attributes: {
        deffile: trim(deffile),
        // apptainer run-help reads this, not the image's runscript.help, when the object exists.
        ...(helpfile ? { helpfile: trim(helpfile) } : {}),
        environment: {
          '/.singularity.d/env/10-docker2singularity.sh': trim(dockerEnvScript(cfg.Env ?? [])),
          '/.singularity.d/env/90-environment.sh': trim(ENVIRONMENT_SH),
        },
        labels,
        runscript: trim(runscript(cfg)),
        startscript: trim(STARTSCRIPT),
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

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/**
 * org.label-schema.build-date as apptainer writes it (internal/pkg/build/metadata.go,
 * addBuildLabels: `Weekday_D_Month_YYYY_H:M:S_ZONE`, numbers unpadded), in UTC.
 */
export function buildDateLabel(now: Date): string {
  return `${WEEKDAYS[now.getUTCDay()]}_${now.getUTCDate()}_${MONTHS[now.getUTCMonth()]}_${now.getUTCFullYear()}_${now.getUTCHours()}:${now.getUTCMinutes()}:${now.getUTCSeconds()}_UTC`;
}

/**
 * The labels of a converted image: the Docker image's own (org.opencontainers.image.*
 * included), the ones apptainer's build adds, then sifpack's.
 */
export function convertLabels(config: ImageConfig, image: string, arch: string, now: Date, sifpackVersion: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...Object.fromEntries(Object.entries(config.Labels ?? {}).map(([k, v]) => [k, String(v)])),
    'org.label-schema.build-arch': arch,
    'org.label-schema.build-date': buildDateLabel(now),
    'org.label-schema.schema-version': '1.0',
    'org.label-schema.usage.singularity.deffile.bootstrap': 'docker-daemon',
    'org.label-schema.usage.singularity.deffile.from': image,
    'sifpack.converted-by': `sifpack ${sifpackVersion}`,
    ...extra,
  };
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
  const labels = convertLabels(info.config, req.image, arch, req.now ?? new Date(), req.sifpackVersion, req.labels);
  const writer = await SifWriter.create(req.output, { force: req.force, ...(req.now ? { now: req.now } : {}) });
  const report: TransformReport = { entries: 0, bytes: 0, replaced: [] };
  let tmpSquash: string | undefined;
  try {
    const metadata = rootfsMetadata(info.config, deffile, labels);
    req.onProgress?.(`exporting ${req.image} (${(info.size / 2 ** 20).toFixed(0)} MiB) into ${squasher.name}`);

    const lines: string[] = [];
    const tick = req.onBytes ? setInterval(() => req.onBytes!(report.bytes, info.size), 500) : undefined;
    try {
    await engine.withExport(
      req.image,
      async (exported, readFile) => {
        // What apptainer's inspect-metadata.json holds: read from the image before its filesystem streams,
        // since these objects go before the partition.
        const help = (await readFile('/.singularity.d/runscript.help'))?.toString('utf8');
        writer.addObject(DataType.Deffile, Buffer.from(deffile));
        writer.addObject(DataType.GenericJSON, Buffer.from(JSON.stringify(inspectMetadata(info.config, deffile, labels, help))), { name: 'inspect-metadata.json' });
        writer.addObject(DataType.GenericJSON, Buffer.from(JSON.stringify(ociConfig(info.config))), { name: 'oci-config.json' });
        const offset = writer.partitionOffset();
        const rootfs = transformRootfs(exported, metadata, report);
        const common = { stdin: rootfs, onLine: (l: string) => lines.push(l), ...(req.signal ? { signal: req.signal } : {}) };
        let res: { code: number };
        if (squasher.name === 'mksquashfs') {
          // -offset: the squashfs goes straight into the SIF at its aligned place.
          res = await runner.stream(squasher.path, ['-', writer.tmp, '-tar', '-offset', String(offset), '-noappend', '-comp', req.compression, '-root-mode', '755', '-quiet', '-no-progress'], common);
        } else {
          const squash = req.tmpdir ? path.join(path.resolve(req.tmpdir), `${path.basename(writer.tmp)}.squashfs`) : `${writer.tmp}.squashfs`;
          // Beside the output, the writer sweeps what a killed run left; in --tmpdir, this does.
          if (req.tmpdir) await sweepStaleTemps(path.join(path.resolve(req.tmpdir), path.basename(writer.target)));
          tmpSquash = squash;
          res = await runner.stream(squasher.path, ['--compressor', req.compression, '--quiet', '--force', squash], common);
        }
        if (req.signal?.aborted) throw new SifpackError('conversion interrupted; no image written', EXIT.interrupted);
        if (res.code !== 0 && lines.some((l) => /no space left on device/i.test(l))) throw writeFailure(writer.target, Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }));
        if (res.code !== 0) throw new RuntimeFailure(`${squasher.name} failed (exit ${res.code})`, { details: lines.slice(-8) });
      },
      req.signal,
    );
    } finally {
      if (tick) clearInterval(tick);
    }
    // Done: the real total is what streamed (the engine's size is an estimate).
    req.onBytes?.(report.bytes, report.bytes);
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
