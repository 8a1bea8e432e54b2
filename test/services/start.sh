#!/usr/bin/env bash
# start.sh STATE_DIR — starts, on loopback and under STATE_DIR only:
#   dockerd (own data root and socket, no network) with two local images,
#   slurmctld + slurmd (one node, auth/none),
#   two OCI registries (plain, and htpasswd basic auth),
# waits until each really works, and writes STATE_DIR/services.env with
# KEY=value lines the tests read. stop.sh STATE_DIR undoes it.
set -euo pipefail

STATE=$(realpath -m "${1:?usage: start.sh STATE_DIR}")
mkdir -p "$STATE"
CACHE=${SIFPACK_TEST_CACHE:-/var/cache/sifpack-test}
ENVF="$STATE/services.env"
: >"$ENVF"
t0=$(date +%s)

say() { echo "start.sh: $*" >&2; }
die() { echo "start.sh: FAILED: $*" >&2; exit 1; }
put() { echo "$1=$2" >>"$ENVF"; }
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
# wait_for SECONDS DESCRIPTION COMMAND...: retry until the command succeeds
wait_for() {
  local secs=$1 what=$2; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.3
  done
}

# ---------------------------------------------------------------- Docker
# Debian's dockerd 20.10 (API 1.41); its own client avoids version skew with
# any newer docker CLI earlier on PATH.
DOCKER=/usr/bin/docker
D="$STATE/docker"
mkdir -p "$D/data" "$D/exec"
SOCK="$D/docker.sock"
# No bridge and no iptables: containers run with --network none, and nothing
# here may touch the host's network configuration.
dockerd --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/dockerd.pid" \
  -H "unix://$SOCK" --iptables=false --ip-masq=false --bridge=none \
  >"$D/dockerd.log" 2>&1 &
export DOCKER_HOST="unix://$SOCK"
wait_for 60 dockerd "$DOCKER" version || { tail -20 "$D/dockerd.log" >&2; die "dockerd did not answer on $SOCK"; }
put DOCKER_HOST "$DOCKER_HOST"
say "dockerd up ($(( $(date +%s) - t0 ))s)"

# Base images, made offline: a Debian minbase with python3 (debootstrap from
# the machine's own apt mirror, cached as a tarball), and a busybox rootfs.
mkdir -p "$CACHE"
ROOTFS_TAR="$CACHE/bookworm-python3.tar"
if [ ! -s "$ROOTFS_TAR" ]; then
  MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$MIRROR" ] || die "no Debian mirror found in the apt sources for debootstrap"
  say "debootstrap bookworm from $MIRROR (cached afterwards in $CACHE)"
  R=$(mktemp -d "$STATE/rootfs.XXXX")
  debootstrap --variant=minbase --include=python3-minimal bookworm "$R" "$MIRROR" >"$STATE/debootstrap.log" 2>&1 \
    || { tail -20 "$STATE/debootstrap.log" >&2; die "debootstrap failed"; }
  tar -C "$R" -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$R"
fi
BASE=sifpack-test/bookworm-python:12
"$DOCKER" import "$ROOTFS_TAR" "$BASE" >/dev/null || die "docker import of the base image failed"
B=$(mktemp -d "$STATE/busybox.XXXX")
mkdir -p "$B/bin" "$B/tmp" "$B/etc"
cp /bin/busybox "$B/bin/busybox"
for app in sh ls cat echo env mkdir rm cp mv true false sleep test printf; do ln -s busybox "$B/bin/$app"; done
BUSYBOX=sifpack-test/busybox:1
tar -C "$B" -c . | "$DOCKER" import - "$BUSYBOX" >/dev/null || die "docker import of busybox failed"
rm -rf "$B"
out=$("$DOCKER" run --rm --network none "$BASE" python3 -c 'print(6*7)') || die "the base image does not run python3"
[ "$out" = 42 ] || die "python3 in the base image printed '$out'"
put SIFPACK_TEST_BASE_IMAGE "$BASE"
put SIFPACK_TEST_BUSYBOX_IMAGE "$BUSYBOX"
say "images $BASE and $BUSYBOX ready ($(( $(date +%s) - t0 ))s)"

# ---------------------------------------------------------------- Slurm
S="$STATE/slurm"
mkdir -p "$S/state" "$S/spool" "$S/log" "$S/run"
NODE=$(hostname -s)
MEM=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) * 8 / 10 ))
CONF="$S/slurm.conf"
cat >"$CONF" <<CONF
# One-node Slurm for sifpack's tests (loopback, no munge, no accounting).
ClusterName=sifpacktest
SlurmctldHost=$NODE
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
# Finished jobs stay visible to scontrol for 10 minutes (no sacct here).
MinJobAge=600
# Quick time-limit enforcement for the TIMEOUT test.
OverTimeLimit=0
KillWait=2
InactiveLimit=0
SchedulerParameters=sched_interval=1
# Jobs ask for little by default, and the node offers 8 CPUs whatever the
# machine has (config_overrides), so the tests' jobs run side by side and a
# one-minute TIMEOUT job does not hold up the rest.
DefMemPerCPU=200
SlurmdParameters=config_overrides
NodeName=$NODE CPUs=8 RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$CONF"
slurmctld -c -f "$CONF" || die "slurmctld did not start (see $S/log/slurmctld.log)"
slurmd -c -f "$CONF" || die "slurmd did not start (see $S/log/slurmd.log)"
node_idle() { sinfo -h -n "$NODE" -o '%t' | grep -qE '^(idle|mix|alloc)'; }
wait_for 60 "slurm node" node_idle || { tail -20 "$S/log/slurmctld.log" "$S/log/slurmd.log" >&2; die "the Slurm node did not become idle"; }
J=$(sbatch --parsable -o "$S/smoke.out" --wrap 'echo slurm-ok') || die "sbatch of a smoke job failed"
job_done() { grep -q slurm-ok "$S/smoke.out" 2>/dev/null; }
wait_for 60 "smoke job" job_done || die "the Slurm smoke job $J did not run"
put SLURM_CONF "$CONF"
put SIFPACK_TEST_PARTITION debug
say "slurm up, smoke job $J ran ($(( $(date +%s) - t0 ))s)"

# ---------------------------------------------------------------- registries
R="$STATE/registry"
mkdir -p "$R/plain" "$R/auth"
PLAIN_PORT=$(free_port)
cat >"$R/plain.yml" <<YML
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $R/plain/data }, delete: { enabled: true } }
http: { addr: "127.0.0.1:$PLAIN_PORT" }
YML
USER_NAME=sifpack
PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
htpasswd -Bbc "$R/htpasswd" "$USER_NAME" "$PASSWORD" >/dev/null 2>&1
AUTH_PORT=$(free_port)
cat >"$R/auth.yml" <<YML
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $R/auth/data }, delete: { enabled: true } }
http: { addr: "127.0.0.1:$AUTH_PORT" }
auth: { htpasswd: { realm: sifpack-test, path: $R/htpasswd } }
YML
docker-registry serve "$R/plain.yml" >"$R/plain.log" 2>&1 & echo $! >"$R/plain.pid"
docker-registry serve "$R/auth.yml" >"$R/auth.log" 2>&1 & echo $! >"$R/auth.pid"
wait_for 30 registry curl -fsS "http://127.0.0.1:$PLAIN_PORT/v2/" || { cat "$R/plain.log" >&2; die "the registry did not answer /v2/"; }
wait_for 30 "auth registry" curl -fsS -u "$USER_NAME:$PASSWORD" "http://127.0.0.1:$AUTH_PORT/v2/" || { cat "$R/auth.log" >&2; die "the auth registry did not answer /v2/"; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AUTH_PORT/v2/")
[ "$code" = 401 ] || die "the auth registry answered $code without credentials (expected 401)"
put SIFPACK_TEST_REGISTRY "127.0.0.1:$PLAIN_PORT"
put SIFPACK_TEST_AUTH_REGISTRY "127.0.0.1:$AUTH_PORT"
put SIFPACK_TEST_REGISTRY_USER "$USER_NAME"
put SIFPACK_TEST_REGISTRY_PASSWORD "$PASSWORD"
say "registries up on 127.0.0.1:$PLAIN_PORT and :$AUTH_PORT (basic auth) ($(( $(date +%s) - t0 ))s)"

# ---------------------------------------------------------------- tools
for t in mksquashfs unsquashfs tar2sqfs siftool; do
  command -v "$t" >/dev/null || die "$t is not installed (run test/services/install.sh)"
done
# The real Apptainer (install-apptainer.sh, cached in $CACHE; not on PATH).
APPTAINER=$(bash "$(dirname "$0")/install-apptainer.sh") || die "no real apptainer (run test/services/install.sh)"
"$APPTAINER" version >/dev/null || die "$APPTAINER does not run"
put SIFPACK_TEST_APPTAINER "$APPTAINER"
say "apptainer $("$APPTAINER" version) at $APPTAINER"
say "all services ready in $(( $(date +%s) - t0 ))s; settings in $ENVF"
