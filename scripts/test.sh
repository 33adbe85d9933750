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
# Again on the current LTS, while the machine's Node is the older one. Left out: the
# fault-injection files that kill commands, restart an engine or boot RabbitMQ nodes (they test
# Docker's and RabbitMQ's behaviour), and the end-to-end files through a real sshd and git hooks
# and the lock-turns one (they test sshd's, git's and the locks' behaviour, over framing and
# client code the other files run on Node 24 too: test/server/stdio, test/laboratory/https,
# test/cli/remote). Once is enough, and they would take the run past half an hour on CI's two cores.
node24=$(bash scripts/node24.sh)
echo "[test] the suite again on Node $("$node24" --version), without the fault-injection and sshd files" >&2
"$node24" node_modules/vitest/vitest.mjs run \
  --exclude test/experiments/crash-docker.test.ts \
  --exclude test/experiments/engine-restart.test.ts \
  --exclude test/services/rabbitmq.test.ts \
  --exclude test/experiments/concurrency.test.ts \
  --exclude test/cli/ssh.test.ts \
  --exclude test/server/ssh.test.ts \
  --exclude test/server/git-push.test.ts \
  "$@"
