#!/usr/bin/env bash
# stop.sh STATE_DIR — stops what start.sh started there and removes its state.
# Never fails: a service that is already gone is fine.
set -uo pipefail
STATE=$(realpath -m "${1:?usage: stop.sh STATE_DIR}")
[ -d "$STATE" ] || exit 0

stop_pid() { # stop_pid PIDFILE: TERM, wait up to 10 s, then KILL
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

if [ -S "$STATE/docker/docker.sock" ]; then
  # containers first, so no overlay mount stays busy
  ids=$(DOCKER_HOST="unix://$STATE/docker/docker.sock" /usr/bin/docker ps -aq 2>/dev/null)
  [ -n "$ids" ] && DOCKER_HOST="unix://$STATE/docker/docker.sock" /usr/bin/docker rm -f $ids >/dev/null 2>&1
fi
stop_pid "$STATE/docker/dockerd.pid"
stop_pid "$STATE/slurm/run/slurmd.pid"
stop_pid "$STATE/slurm/run/slurmctld.pid"
stop_pid "$STATE/registry/plain.pid"
stop_pid "$STATE/registry/auth.pid"
stop_pid "$STATE/token-registry/registry.pid"
stop_pid "$STATE/token-registry/token-server.pid"
# dockerd leaves overlay and shm mounts under its roots; unmount before removing
grep -o " $STATE/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
rm -rf "$STATE"
exit 0
