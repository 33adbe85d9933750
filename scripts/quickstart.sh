#!/usr/bin/env bash
# The quick start: labtest on the bundled example app, on the embedded laboratory (this machine).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node-deps.sh
npm run --silent build
cd examples/hello
node ../../bin/labtest.js check-config
