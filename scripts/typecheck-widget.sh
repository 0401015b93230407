#!/usr/bin/env bash
# Type-check the storefront widget's ES modules (app/static/widget/*.js: `// @ts-check`,
# JSDoc types) with TypeScript's compiler: `tsc -p jsconfig.json` (noEmit, allowJs, checkJs).
# TypeScript comes from the npm registry at the one version pinned below, into
# node_modules/typescript (git-ignored), the way scripts/vendor.sh fetches htmx; fetched once.
# tests/test_widget_types.py runs this, so the test command counts it.
set -euo pipefail
cd "$(dirname "$0")/.."

# 6.0.x: the last TypeScript written in TypeScript (one package, no dependencies); 7 is native.
TYPESCRIPT_VERSION=6.0.3
dest=node_modules/typescript
if [ ! -f "$dest/package.json" ] || [ "$(cat "$dest/.homing-version" 2>/dev/null)" != "$TYPESCRIPT_VERSION" ]; then
  command -v npm >/dev/null 2>&1 || { echo "typecheck-widget.sh: npm is needed to fetch typescript@$TYPESCRIPT_VERSION" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # `npm pack` downloads the published tarball and checks it against the registry's integrity hash.
  tarball=$(cd "$tmp" && npm pack --silent "typescript@$TYPESCRIPT_VERSION" 2>/dev/null | tail -n1)
  tar -xzf "$tmp/$tarball" -C "$tmp"
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp/package" "$dest"
  echo "$TYPESCRIPT_VERSION" > "$dest/.homing-version"
  echo "typescript $TYPESCRIPT_VERSION -> $dest" >&2
fi
exec node "$dest/bin/tsc" -p jsconfig.json "$@"
