#!/usr/bin/env bash
# Stops the private Docker engine when pretest started it (a reused engine is left alone).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -f .tools/dockerd-started-by-pretest ]; then
  bash scripts/start-dockerd.sh stop
  rm -f .tools/dockerd-started-by-pretest
fi
