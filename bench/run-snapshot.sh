#!/usr/bin/env bash
# Runs `bench:all` on a snapshot of the committed HEAD (git archive into a temp dir, node_modules linked), so
# uncommitted edits others make in this working tree mid-run cannot break the brokers being measured. Copies
# bench/results/latest.{json,md} and bench/README.md back. Usage: bash bench/run-snapshot.sh (env as for bench:all).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
snap="$(mktemp -d /tmp/lance-bench-snap-XXXXXX)"
trap 'rm -rf "$snap"' EXIT
git -C "$root" archive HEAD | tar -x -C "$snap"
ln -s "$root/node_modules" "$snap/node_modules"
echo "bench snapshot of $(git -C "$root" rev-parse --short HEAD) in $snap" >&2
(cd "$snap" && node --import tsx bench/all.ts)
if [ "${BENCH_QUICK:-}" != "1" ]; then
  cp "$snap/bench/results/latest.json" "$snap/bench/results/latest.md" "$root/bench/results/"
  cp "$snap/bench/README.md" "$root/bench/README.md"
else
  cp "$snap/bench/results/quick.json" "$snap/bench/results/quick.md" "$root/bench/results/"
fi
