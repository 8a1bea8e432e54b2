#!/usr/bin/env bash
# Installs the Debian packages the integration tests run for real: a Docker
# engine, a one-node Slurm, an OCI registry, squashfs tools, Sylabs' siftool,
# debootstrap for an offline base image. Idempotent; needs root (CI is root).
set -euo pipefail

# libpython3.11-stdlib and python3-pip-whl: the pip-cache test copies the stdlib and pip wheel into the (python3-minimal) base image.
PACKAGES=(docker.io slurm-wlm docker-registry apache2-utils squashfs-tools squashfs-tools-ng siftool debootstrap busybox-static curl ca-certificates bsdutils libpython3.11-stdlib python3-pip-whl)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# The real Apptainer is not a bookworm package: its own script, cached.
install_apptainer() { bash "$(dirname "$0")/install-apptainer.sh" >/dev/null; }
if [ ${#missing[@]} -eq 0 ]; then
  echo "install.sh: all test packages present"
  install_apptainer
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install.sh: need root to install: ${missing[*]} (run as root, or install them yourself)" >&2
  exit 1
fi
echo "install.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_apptainer
echo "install.sh: done"
