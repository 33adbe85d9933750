#!/usr/bin/env bash
# Installs the npm packages with `npm ci` unless node_modules already matches package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.labtest-lock-stamp
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  echo "[deps] npm packages up to date" >&2
else
  echo "[deps] installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
