/**
 * Renders the mustache templates in templates/. HTML escaping is switched off
 * here, in this one place: these are shell scripts and config files, and
 * every value that reaches a shell context is quoted in TypeScript first
 * (shell-quote.ts), so `{{x}}` and `{{{x}}}` mean the same thing.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Mustache from 'mustache';
import { PACKAGE_ROOT } from '../util/package-root.js';

const cache = new Map<string, string>();

/** The text of templates/NAME. */
export function loadTemplate(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(path.join(PACKAGE_ROOT, 'templates', name), 'utf8');
    cache.set(name, text);
  }
  return text;
}

/** Renders templates/NAME with `view`, no escaping. */
export function renderTemplate(name: string, view: object): string {
  return Mustache.render(loadTemplate(name), view, undefined, { escape: (s: string) => s });
}

/** A rendering and the warnings it produced (what one format could not express). */
export interface Rendered {
  text: string;
  warnings: string[];
}
