/** pip requirements installed from version control: pip then runs the VCS's own command. */

export type VcsScheme = 'git' | 'hg' | 'svn' | 'bzr';

/**
 * The VCS schemes of pip requirement lines (`name @ git+https://...`,
 * `-e git+ssh://...`, `hg+`, `svn+`, `bzr+`), each once, in order of appearance.
 */
export function vcsSchemes(lines: readonly string[]): VcsScheme[] {
  const found: VcsScheme[] = [];
  for (const line of lines) {
    for (const m of line.matchAll(/(?:^|[\s@=])(git|hg|svn|bzr)\+[a-z][a-z0-9+.-]*:/gi)) {
      const s = m[1]!.toLowerCase() as VcsScheme;
      if (!found.includes(s)) found.push(s);
    }
  }
  return found;
}
