/**
 * Packages that exist only on macOS or Windows. An environment exported from
 * a laptop that holds them cannot be solved for linux-64 as it is.
 */
const PLATFORM_ONLY_EXACT = new Set([
  // macOS
  'libcxx', 'libcxxabi', 'appnope', 'cctools', 'cctools_osx-64', 'cctools_osx-arm64', 'ld64', 'tapi', 'sigtool',
  'llvm-openmp-osx', 'pyobjc-core', 'pyobjc-framework-cocoa', 'libcxx-devel', 'compiler-rt_osx-64', 'compiler-rt_osx-arm64',
  // Windows
  'vs2015_runtime', 'vc', 'vc14_runtime', 'ucrt', 'pywin32', 'pywin32-ctypes', 'pywinpty', 'winpty', 'wincertstore',
  'win_inet_pton', 'menuinst', 'libwinpthread', 'msys2-conda-epoch', 'intel-openmp-win', 'vs2019_win-64', 'vs2022_win-64',
]);

/** True when `name` names a macOS- or Windows-only package. */
export function isPlatformOnly(name: string): boolean {
  return (
    PLATFORM_ONLY_EXACT.has(name) ||
    name.startsWith('__osx') ||
    name.startsWith('__win') ||
    name.startsWith('m2w64-') ||
    name.startsWith('m2-') ||
    name.startsWith('pyobjc-') ||
    /[-_]osx-(64|arm64)$/.test(name) ||
    /[-_]win-(32|64|arm64)$/.test(name)
  );
}

/** The platform clusters run, which exported environments must solve for. */
export const TARGET_PLATFORM = 'linux-64';

/** The most common non-noarch subdir among `subdirs`, or undefined. */
export function dominantPlatform(subdirs: Iterable<string | undefined>): string | undefined {
  const count = new Map<string, number>();
  for (const s of subdirs) if (s && s !== 'noarch') count.set(s, (count.get(s) ?? 0) + 1);
  let best: string | undefined;
  for (const [s, n] of [...count].sort(([a], [b]) => a.localeCompare(b))) if (!best || n > count.get(best)!) best = s;
  return best;
}
