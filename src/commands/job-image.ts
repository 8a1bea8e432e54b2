/**
 * `--image oras://HOST/REPO:TAG` for jobs (sbatch, run): the image is pulled
 * once, here on the login node, into the shared image-dir, and the job
 * script runs that local file: compute nodes never talk to the registry, so
 * a 100-task array is one pull, not a hundred. Credentials come from the
 * environment and the Docker/apptainer configs as for `pull`.
 */
import { formatRef, parseOrasRef } from '../model/oras-ref.js';
import type { PulledImage } from '../model/sbatch-script.js';
import { type StageResult, stageImage } from '../workflows/share.js';
import type { CliContext } from './context.js';
import { abortOnSigint } from './interrupt.js';
import { explainNetwork, registryFor } from './registry-context.js';
import { TransferProgress } from './transfer-progress.js';

/** The settings a command that takes --image oras://... needs besides `image`. */
export const JOB_IMAGE_SETTINGS = ['image-dir', 'plain-http', 'cache-dir'] as const;

export function isRegistryImage(image: string | undefined): image is string {
  return !!image && /^oras:\/\//i.test(image);
}

export interface JobImage {
  file: string;
  pulled: PulledImage;
  stage: StageResult;
}

/** Pulls (or finds) the image for a job; a registry that cannot be reached or a tag it lacks fails here, before anything is written or submitted. */
export async function pullJobImage(image: string, o: { dir: string; stateDir: string; settings: { plainHttp: boolean; cacheDir?: string | undefined }; ctx: CliContext; quiet: boolean }): Promise<JobImage> {
  const ref = parseOrasRef(image, '--image');
  const interrupt = abortOnSigint();
  const { client, cache, plainHttp } = await registryFor(ref, {}, o.settings, o.ctx, interrupt.signal);
  const progress = new TransferProgress(o.ctx.stderr as typeof o.ctx.stderr & { isTTY?: boolean }, `pull ${formatRef(ref)}`, o.quiet);
  try {
    const stage = await stageImage({
      ref,
      client,
      cache,
      dir: o.dir,
      stateDir: o.stateDir,
      onBytes: (done, total) => progress.update(done, total),
      onInfo: (m) => (o.quiet ? undefined : progress.note(`sifpack: ${m}`)),
    }).catch((err: unknown) => {
      throw explainNetwork(err, plainHttp, interrupt.signal, 'pull');
    });
    return { file: stage.file, stage, pulled: { source: `oras://${formatRef(ref)}`, reference: `oras://${stage.reference}`, digest: stage.layerDigest } };
  } finally {
    progress.done();
    interrupt.dispose();
    await client.close();
  }
}
