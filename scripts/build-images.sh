#!/usr/bin/env bash
# Builds the Lance images with the legacy builder:
#   lance/broker:$TAG    (Dockerfile.broker)     lance/operator:$TAG  (Dockerfile.operator)
# Usage: scripts/build-images.sh [broker|operator]...   (default both)
# Env: TAG (default: package.json version), BASE_IMAGE (default node:20-bookworm-slim), DOCKER_HOST.
# The base image normally comes from a registry. When none is reachable (these machines), a local stand-in is
# built once and tagged with the SAME name: Debian bookworm (debootstrap --variant=minbase, from the apt mirror this
# machine uses) + this machine's node and npm at /usr/local, like the official image. Skipped when the tag exists.
# Exit 3 = no Docker engine reachable (nothing was built).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${TAG:-$(node -p 'require("./package.json").version')}"
BASE_IMAGE="${BASE_IMAGE:-node:20-bookworm-slim}"
REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(broker operator)

log() { echo "build-images: $*" >&2; }
for t in "${targets[@]}"; do
  case "$t" in broker|operator) ;; *) log "unknown image '$t' (broker|operator)"; exit 2;; esac
done

if ! docker info >/dev/null 2>&1; then
  log "no Docker engine reachable (DOCKER_HOST=${DOCKER_HOST:-unset}); start one with scripts/start-dockerd.sh"
  exit 3
fi

build_local_base() {
  local mirror rootfs node_bin npm_dir
  mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
  [ -n "$mirror" ] || mirror="$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  if ! command -v debootstrap >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { log "debootstrap missing and not root"; exit 1; }
    log "installing debootstrap (apt)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >/dev/null
  fi
  node_bin="$(readlink -f "$(command -v node)")"
  npm_dir="$(dirname "$node_bin")/../lib/node_modules/npm"
  [ -f "$npm_dir/bin/npm-cli.js" ] || { log "npm not found next to $node_bin ($npm_dir)"; exit 1; }
  case "$(node -v)" in v20.*) ;; *) log "warning: host node is $(node -v), the base is named $BASE_IMAGE";; esac
  rootfs="$(mktemp -d /var/tmp/lance-base.XXXXXX)"
  trap 'rm -rf "$rootfs"' RETURN
  log "no registry: building a local stand-in for $BASE_IMAGE (debootstrap bookworm from $mirror + node $(node -v))"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
  install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
  mkdir -p "$rootfs/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  # As in the official image: a `node` user (uid 1000) exists; the apt lists are not kept.
  chroot "$rootfs" /usr/sbin/groupadd --gid 1000 node
  chroot "$rootfs" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  # This machine reaches the npm registry through a TLS-intercepting egress proxy whose CA only the host trusts;
  # the stand-in base (a stand-in for *this* machine's node) trusts the same extra CAs. A registry base does not.
  local ca_change=()
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    install -m 0644 "$NODE_EXTRA_CA_CERTS" "$rootfs/usr/local/share/host-extra-ca.crt"
    ca_change=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/host-extra-ca.crt')
  fi
  tar -C "$rootfs" -c . | docker import "${ca_change[@]}" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$(node -v | tr -d v)" \
    --change 'CMD ["node"]' - "$BASE_IMAGE" >/dev/null
  log "built $BASE_IMAGE (local stand-in)"
}

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "base $BASE_IMAGE present"
elif timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  log "pulled $BASE_IMAGE"
else
  build_local_base
fi

for t in "${targets[@]}"; do
  log "building lance/$t:$TAG"
  DOCKER_BUILDKIT=0 docker build --network host -q \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VERSION="$TAG" --build-arg REVISION="$REVISION" \
    -f "Dockerfile.$t" -t "lance/$t:$TAG" . >/dev/null
  log "built lance/$t:$TAG"
done
