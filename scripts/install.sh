#!/usr/bin/env bash
# Installs a built hozon binary and its resources: PREFIX/bin/hozon, PREFIX/share/hozon/
# (ocr-models/, retention-policies/, export-layouts/), PREFIX/lib/systemd/system/hozon.service. The binary
# finds its resources at ../share/hozon from where it is (or HOZON_HOME / --resources).
# Usage: scripts/install.sh PREFIX [BINARY]   (make install PREFIX=/opt/hozon)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:?usage: install.sh PREFIX [BINARY]}
bin=${2:-target/release/hozon}
[ -x "$bin" ] || { echo "install: $bin not built (make build)" >&2; exit 1; }
[ -f ocr-models/tessdata/jpn.traineddata ] || { echo "install: run scripts/setup.sh first (models missing)" >&2; exit 1; }
install -D -m 755 "$bin" "$prefix/bin/hozon"
share="$prefix/share/hozon"
rm -rf "$share"
mkdir -p "$share"
cp -r ocr-models retention-policies export-layouts "$share/"
cp LICENSE* NOTICE* "$share/" 2>/dev/null || true
install -d "$prefix/lib/systemd/system"
sed "s|@PREFIX@|$prefix|g" packaging/hozon.service > "$prefix/lib/systemd/system/hozon.service"
echo "installed: $prefix/bin/hozon (resources in $share; systemd unit in $prefix/lib/systemd/system/hozon.service)"
