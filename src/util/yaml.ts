/**
 * The one way sifpack reads YAML it did not write (environment.yml,
 * sifpack.yml, presets, .condarc): syntax errors, duplicate keys, aliases
 * without an anchor and alias bombs all become an InputError naming the file,
 * and the yaml library's own warnings (unknown tags) never reach stderr as
 * Node warnings.
 */
import { createRequire } from 'node:module';
import type * as YamlModule from 'yaml';
import { InputError } from '../errors.js';

let yamlModule: typeof YamlModule | undefined;
/** The yaml library, loaded on first use (a sixth of a CPU second at start-up that push, pull and status never need). */
export function yamlLib(): typeof YamlModule {
  yamlModule ??= createRequire(import.meta.url)('yaml') as typeof YamlModule;
  return yamlModule;
}

export function parseYamlFile(text: string, file: string): unknown {
  const doc = yamlLib().parseDocument(text, { uniqueKeys: true, prettyErrors: true, logLevel: 'silent' });
  if (doc.errors.length > 0) {
    throw new InputError(`${file}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`, { hint: 'fix the YAML syntax at the line shown' });
  }
  try {
    // maxAliasCount bounds "billion laughs" documents.
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    throw new InputError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, { hint: 'check the anchors (&name) and aliases (*name) in the file' });
  }
}
