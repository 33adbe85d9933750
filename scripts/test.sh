#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs and starts what the tests need (npm packages,
# dockerd, service images, native servers), reusing whatever is already there, then checks and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node-deps.sh
bash scripts/infra/setup.sh
echo "[test] build, lint, typecheck" >&2
npm run --silent build
npm run --silent lint
npm run --silent typecheck
npx vitest run "$@"
# Again on the current LTS, while the machine's Node is the older one. The fault-injection files
# that kill commands, restart an engine or boot RabbitMQ nodes test Docker's and RabbitMQ's
# behaviour, not Node's, through code the other files run on Node 24 too; once is enough, and
# they would take the run past half an hour on CI's two cores.
node24=$(bash scripts/node24.sh)
echo "[test] the suite again on Node $("$node24" --version), without the fault-injection files" >&2
"$node24" node_modules/vitest/vitest.mjs run \
  --exclude test/experiments/crash-docker.test.ts \
  --exclude test/experiments/engine-restart.test.ts \
  --exclude test/services/rabbitmq.test.ts \
  "$@"
