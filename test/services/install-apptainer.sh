#!/usr/bin/env bash
# install-apptainer.sh — a real Apptainer 1.4.5 for the tests, from Debian's
# own packages, into the test cache (never onto PATH, never changing the
# system's apt sources). Prints the path of the apptainer binary on stdout.
#
# Why each step (details in test/services/README.md):
#  1. apptainer is not in bookworm; sid has it. A private apt configuration
#     (own sources list, lists and cache dirs) downloads sid's apptainer and a
#     libc6 new enough for it, against the machine's own Debian mirror.
#  2. sid's binaries need GLIBC_2.38: the newer libc goes into PREFIX/glibc
#     and apptainer + starter get it as interpreter and DT_RPATH (RUNPATH
#     would lose against the LD_LIBRARY_PATH apptainer sets when it re-execs).
#  3. apptainer relocates itself when run outside /usr; Debian's LIBEXECDIR
#     makes the starter look one level too deep, hence three symlinks.
#  4. root here lacks CAP_SYS_RESOURCE in its bounding set and the starter
#     aborts when it cannot get every capability: capshim.c hides that.
# Cached: a second run with the install present costs well under a second.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${SIFPACK_TEST_CACHE:-/var/cache/sifpack-test}
WANT=${SIFPACK_APPTAINER_VERSION:-1.4.5-2}
PREFIX="$CACHE/apptainer-$WANT"
BIN="$PREFIX/usr/bin/apptainer"

say() { echo "install-apptainer.sh: $*" >&2; }
die() { echo "install-apptainer.sh: FAILED: $*" >&2; exit 1; }

if [ -x "$BIN" ] && [ -f "$PREFIX/.complete" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
[ "$(id -u)" = 0 ] || die "need root to install the packages apptainer needs (run as root)"

# Bookworm packages: patchelf/gcc for the adjustments, squashfs and fuse tools
# apptainer calls, uidmap for non-root user namespaces.
NEED=(patchelf gcc libc6-dev squashfs-tools squashfuse fuse2fs uidmap libseccomp2 libsqlite3-0 ca-certificates)
missing=()
for p in "${NEED[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$MIRROR" ] || die "no Debian mirror found in the apt sources"

APT="$CACHE/apt-sid"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs"
cat >"$APT/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR sid main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main
EOF
O=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
   -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o Debug::NoLocking=1)
say "reading sid/trixie package lists from $MIRROR (private apt state in $APT)"
apt-get "${O[@]}" update -qq >"$APT/update.log" 2>&1 || { tail -5 "$APT/update.log" >&2; die "apt-get update of the private sources failed"; }

# sid moves: take the wanted version when it is still there, else sid's current.
version=$WANT
if ! apt-cache "${O[@]}" show "apptainer=$version" >/dev/null 2>&1; then
  version=$(apt-cache "${O[@]}" policy apptainer | awk '/Candidate:/{print $2}')
  [ -n "$version" ] && [ "$version" != "(none)" ] || die "no apptainer package in sid"
  say "apptainer $WANT is gone from sid; using $version"
fi
# The libc6 its Depends asks for: trixie's when new enough, else sid's.
need_libc=$(apt-cache "${O[@]}" show "apptainer=$version" | sed -n 's/^Depends:.*libc6 (>= \([^)]*\)).*/\1/p' | head -1)
libc=""
for cand in $(apt-cache "${O[@]}" madison libc6 | awk '{print $3}'); do
  if dpkg --compare-versions "$cand" ge "${need_libc:-2.38}"; then
    # prefer the oldest version that is new enough (trixie's over sid's)
    if [ -z "$libc" ] || dpkg --compare-versions "$cand" lt "$libc"; then libc=$cand; fi
  fi
done
[ -n "$libc" ] || die "no libc6 >= ${need_libc:-2.38} in sid or trixie"

cd "$APT/debs"
rm -f ./*.deb
apt-get "${O[@]}" download "apptainer=$version" "libc6=$libc" >"$APT/download.log" 2>&1 \
  || { tail -5 "$APT/download.log" >&2; die "download of apptainer=$version libc6=$libc failed"; }
say "downloaded apptainer $version and libc6 $libc"

STAGE=$(mktemp -d "$CACHE/apptainer-stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
dpkg-deb -x apptainer_*.deb "$STAGE/root"
dpkg-deb -x libc6_*.deb "$STAGE/libc"
R="$STAGE/root"

# 2. glibc
mkdir -p "$R/glibc"
cp -a "$STAGE"/libc/usr/lib/x86_64-linux-gnu/*.so* "$R/glibc/"
FINAL_GLIBC="$PREFIX/glibc"
STARTER="$R/usr/lib/x86_64-linux-gnu/apptainer/bin/starter"
for f in "$R/usr/bin/apptainer" "$STARTER"; do
  patchelf --set-interpreter "$FINAL_GLIBC/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$FINAL_GLIBC" "$f"
done

# 3. relocation
mv "$R/etc" "$R/usr/etc"
mkdir -p "$R/usr/var/lib/apptainer/mnt/session"
ln -s ../var "$R/usr/lib/var"
ln -s ../etc "$R/usr/lib/etc"
ln -s ../lib "$R/usr/lib/lib"

# 4. capability shim
gcc -shared -fPIC -O2 -Wall -o "$R/glibc/libsifpack-capshim.so" "$HERE/capshim.c" -ldl
patchelf --add-needed libsifpack-capshim.so "$STARTER"

rm -rf "$PREFIX"
mv "$R" "$PREFIX"
printf 'apptainer=%s\nlibc6=%s\nmirror=%s\ninstalled=%s\n' "$version" "$libc" "$MIRROR" "$(date -u +%FT%TZ)" >"$PREFIX/.complete"
"$BIN" --version >&2 || die "the installed apptainer does not run"
say "installed in $PREFIX ($(tr '\n' ' ' <"$PREFIX/.complete"))"
echo "$BIN"
