#!/usr/bin/env bash
# The quick start: labtest on the bundled example app, on the embedded laboratory (this machine):
# validate its configuration, bring its services up, print the environment its app receives.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node-deps.sh
bash scripts/infra/setup.sh
npm run --silent build
cd examples/hello
labtest() { node ../../bin/labtest.js "$@"; }
labtest check-config
labtest services up --experiment quickstart
labtest services env --experiment quickstart
