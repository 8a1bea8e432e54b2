/**
 * Channels as they appear in records (`https://conda.anaconda.org/conda-forge/noarch`),
 * turned into what environment.yml should say (`conda-forge`), with any
 * credentials taken out first.
 */
import { isSubdir } from './match-spec.js';

/** The anaconda.com channels that conda calls `defaults`. */
const DEFAULTS_URL = /^https?:\/\/repo\.(anaconda\.com|continuum\.io)\/pkgs\/(main|r|free|msys2|pro)(\/|$)/;
const ANACONDA_ORG = /^https?:\/\/conda\.anaconda\.org\/([^/]+)/;

export interface CleanUrl {
  url: string;
  /** True when a token or user:password was taken out. */
  hadCredentials: boolean;
}

/**
 * Removes `/t/<token>/` segments and `user:pass@` from a URL. A token written
 * as an environment variable (`/t/${CONDA_TOKEN}/`) is no secret and stays.
 */
export function stripCredentials(url: string): CleanUrl {
  let hadCredentials = false;
  let out = url.replace(/\/t\/([^/]+)(?=\/)/g, (whole, token: string) => {
    if (/^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(token)) return whole;
    hadCredentials = true;
    return '';
  });
  out = out.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@]+)@/i, (whole, scheme: string, userinfo: string) => {
    if (/^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?(:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)?$/.test(userinfo)) return whole;
    hadCredentials = true;
    return scheme;
  });
  return { url: out, hadCredentials };
}

/**
 * The environment.yml name of a channel given as URL or name: anaconda.org
 * channels by their short name, anaconda.com's by `defaults`, others as their
 * URL without the platform subdirectory.
 */
export function channelName(channel: string): string {
  const { url } = stripCredentials(channel.trim().replace(/\/+$/, ''));
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    if (/^pkgs\/(main|r|free|msys2|pro)$/.test(url)) return 'defaults';
    const slash = url.lastIndexOf('/');
    return slash > 0 && isSubdir(url.slice(slash + 1)) ? url.slice(0, slash) : url;
  }
  if (DEFAULTS_URL.test(url)) return 'defaults';
  const org = ANACONDA_ORG.exec(url);
  if (org) return org[1]!;
  const slash = url.lastIndexOf('/');
  return isSubdir(url.slice(slash + 1)) ? url.slice(0, slash) : url;
}
