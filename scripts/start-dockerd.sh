#!/usr/bin/env bash
# Starts a private Docker engine for the image tests (test/images/), or reuses the one already running.
#   bash scripts/start-dockerd.sh        → starts dockerd if needed, waits for `docker info`, prints
#                                          DOCKER_HOST=... and LANCE_DOCKERD_STARTED=1 (started now) or 0 (reused)
#   bash scripts/start-dockerd.sh stop   → stops the dockerd it started (by its pid file) and unmounts its netns
# No bridge networking and no iptables (the machines have neither a registry nor NAT to offer; builds and
# containers use --network host). State lives under $LANCE_DOCKERD_DIR (default /var/tmp/lance-dockerd).
# Never fails the caller's suite by itself: exit status 0 = engine ready, non-zero = not available (reason on stderr).
set -uo pipefail
DIR="${LANCE_DOCKERD_DIR:-/var/tmp/lance-dockerd}"
SOCK="$DIR/run/docker.sock"
PIDFILE="$DIR/dockerd.pid"
export DOCKER_HOST="unix://$SOCK"

stop() {
  if [ -f "$PIDFILE" ]; then
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$PIDFILE"
  fi
  mountpoint -q "$DIR/exec/netns/default" 2>/dev/null && umount "$DIR/exec/netns/default"
  return 0
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi

if docker info >/dev/null 2>&1; then printf 'DOCKER_HOST=%s\nLANCE_DOCKERD_STARTED=0\n' "$DOCKER_HOST"; exit 0; fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "start-dockerd: installing docker.io (apt)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io tini; } >/dev/null 2>&1 \
      || { echo "start-dockerd: apt-get install docker.io failed" >&2; exit 1; }
  else
    echo "start-dockerd: dockerd is not installed and cannot be installed (not root or no apt)" >&2; exit 1
  fi
fi

stop  # a stale pid file / netns mount from a killed run
mkdir -p "$DIR/run" "$DIR/data" "$DIR/exec"
# setsid: dockerd must not die with the shell that started it (the test run outlives this script).
setsid dockerd --data-root "$DIR/data" --exec-root "$DIR/exec" --host "$DOCKER_HOST" --pidfile "$PIDFILE" \
  --bridge=none --iptables=false --ip6tables=false --ip-masq=false >"$DIR/dockerd.log" 2>&1 < /dev/null &
for _ in $(seq 1 300); do
  if docker info >/dev/null 2>&1; then printf 'DOCKER_HOST=%s\nLANCE_DOCKERD_STARTED=1\n' "$DOCKER_HOST"; exit 0; fi
  sleep 0.1
done
echo "start-dockerd: dockerd did not answer within 30 s; log: $DIR/dockerd.log" >&2
tail -20 "$DIR/dockerd.log" >&2
exit 1
