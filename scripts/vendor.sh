#!/usr/bin/env bash
# Put htmx (the exact version app/config.py names) at app/static/vendor/htmx.min.js, from the
# npm registry, so pages can run without a CDN (HOMING_HTMX_LOCAL=true; the browser tests).
# Idempotent: does nothing when the right version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^HTMX_VERSION = "\([^"]*\)".*/\1/p' app/config.py)
[ -n "$version" ] || { echo "vendor.sh: no HTMX_VERSION in app/config.py" >&2; exit 1; }
dest=app/static/vendor
if [ -f "$dest/htmx.min.js" ] && [ "$(cat "$dest/htmx.version" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "vendor.sh: npm is needed to fetch htmx.org@$version" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# `npm pack` downloads the published tarball and checks it against the registry's integrity hash.
tarball=$(cd "$tmp" && npm pack --silent "htmx.org@$version" 2>/dev/null | tail -n1)
tar -xzf "$tmp/$tarball" -C "$tmp" package/dist/htmx.min.js
mkdir -p "$dest"
cp "$tmp/package/dist/htmx.min.js" "$dest/htmx.min.js"
echo "$version" > "$dest/htmx.version"
echo "htmx $version -> $dest/htmx.min.js"
