/**
 * The OCI manifest `apptainer push oras://` writes for a SIF, and the check
 * `apptainer pull oras://` makes before downloading. Checked against
 * apptainer's internal/pkg/client/oras/{image,config,layer,oras}.go at the
 * v1.4.5 tag (the released apptainer), and its main branch, which adds the
 * config's inline `data` and an `org.opencontainers.image.created`
 * annotation; both versions pull either shape.
 *
 * Format (v1.4.5; field order as go-containerregistry marshals v1.Manifest):
 *   {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 *    "config":{"mediaType":"application/vnd.sylabs.sif.config.v1+json","size":2,
 *              "digest":"sha256:44136f..."},
 *    "layers":[{"mediaType":"application/vnd.sylabs.sif.layer.v1.sif","size":N,
 *               "digest":"sha256:...","annotations":{"org.opencontainers.image.title":"x.sif"}}]}
 * With no annotations of ours, the bytes (so the manifest digest) are the
 * ones apptainer 1.4.5 pushes for the same file name.
 */
import { InputError } from '../errors.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const SIF_CONFIG = 'application/vnd.sylabs.sif.config.v1+json';
export const SIF_LAYER = 'application/vnd.sylabs.sif.layer.v1.sif';
/** What Singularity < 3.7 pushed (typo included); apptainer still pulls it. */
export const SIF_LAYER_PROTO = 'appliciation/vnd.sylabs.sif.layer.tar';
/** The config is always `{}`. */
export const EMPTY_CONFIG = '{}';
export const EMPTY_CONFIG_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
/** Every manifest type a registry may answer with, so we can tell a Docker image from a SIF. */
export const MANIFEST_ACCEPT = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST].join(', ');

export interface Descriptor {
  mediaType: string;
  size: number;
  digest: string;
  data?: string;
  annotations?: Record<string, string>;
}

export interface SifManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** The manifest for one SIF file; `annotations` (if any) go at the top level, as apptainer main's `--annotation` does. */
export function sifManifest(layer: { digest: string; size: number; fileName: string }, annotations: Record<string, string> = {}): SifManifest {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: SIF_CONFIG, size: EMPTY_CONFIG.length, digest: EMPTY_CONFIG_DIGEST },
    layers: [{ mediaType: SIF_LAYER, size: layer.size, digest: layer.digest, annotations: { 'org.opencontainers.image.title': layer.fileName } }],
    ...(Object.keys(annotations).length ? { annotations } : {}),
  };
}

/**
 * The SIF layer of a manifest, or an InputError (exit 2) saying what the
 * reference is instead: a container image gets the hint to use docker://.
 * Like apptainer, the config media type is not checked (old pushes vary).
 */
export function sifLayerOf(manifest: unknown, mediaType: string | undefined, ref: string): Descriptor {
  const m = (manifest ?? {}) as { mediaType?: string; manifests?: unknown[]; layers?: Descriptor[]; config?: Descriptor };
  const type = m.mediaType ?? mediaType ?? '';
  const containerHint = `${ref} looks like a container image: pull it with \`apptainer pull docker://${ref}\`, or \`docker pull\` it and run \`sifpack convert IMAGE -o IMAGE.sif\``;
  if (type === OCI_INDEX || type === DOCKER_MANIFEST_LIST || Array.isArray(m.manifests)) {
    throw new InputError(`${ref} is a multi-platform image index, not a SIF pushed with ORAS`, { hint: containerHint });
  }
  const layers = Array.isArray(m.layers) ? m.layers : [];
  const sif = layers.length === 1 && (layers[0]!.mediaType === SIF_LAYER || layers[0]!.mediaType === SIF_LAYER_PROTO) ? layers[0]! : undefined;
  if (sif) {
    if (typeof sif.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(sif.digest) || !Number.isSafeInteger(sif.size) || sif.size < 0) {
      throw new InputError(`${ref}: the SIF layer's digest or size is malformed (${JSON.stringify(sif.digest)}, ${JSON.stringify(sif.size)})`);
    }
    return sif;
  }
  const types = layers.map((l) => l?.mediaType).join(', ') || 'none';
  const config = m.config?.mediaType ?? 'none';
  const looksContainer = /image\.config|container\.image/.test(config) || layers.some((l) => /tar/.test(l?.mediaType ?? ''));
  throw new InputError(`${ref} is not a SIF: ${layers.length} layer(s) of type ${types}, config ${config} (an ORAS SIF has one ${SIF_LAYER} layer)`, {
    ...(looksContainer ? { hint: containerHint } : { hint: 'push a SIF there with `sifpack push IMAGE.sif oras://...` or `apptainer push IMAGE.sif oras://...`' }),
  });
}
