#!/usr/bin/env bash
# The whole test suite from a fresh clone: installs and starts what the tests need (npm packages,
# dockerd, service images, native servers), reusing whatever is already there, then checks and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node-deps.sh
bash scripts/infra/setup.sh
echo "[test] build, lint, typecheck" >&2
# At once: each is one process on one core, and waiting for all three reports every failure.
npm run --silent build & build=$!
npm run --silent lint & lint=$!
npm run --silent typecheck & typecheck=$!
failed=0
for job in "$build" "$lint" "$typecheck"; do wait "$job" || failed=1; done
[ "$failed" = 0 ]
npx vitest run "$@"
# Again on the current LTS, while the machine's Node is the older one. Left out: the files whose
# subject is another program's behaviour under labtest — Docker's and the processes' under
# injected faults (killed commands, a restarted engine), the database servers' grants and tenant
# isolation, RabbitMQ's nodes, sshd's and git hooks', the locks' turns. Their labtest code runs
# on Node 24 in the other files (the provisioners in test/services/provision and sharing, the
# transports' framing in test/server/stdio, test/laboratory/https and test/cli/remote); once is
# enough, and twice would take the run past half an hour on CI's two cores.
node24=$(bash scripts/node24.sh)
echo "[test] the suite again on Node $("$node24" --version), without the files of other programs' behaviour" >&2
"$node24" node_modules/vitest/vitest.mjs run \
  --exclude test/experiments/crash-docker.test.ts \
  --exclude test/experiments/crash.test.ts \
  --exclude test/experiments/engine-restart.test.ts \
  --exclude test/experiments/docker-faults.test.ts \
  --exclude test/experiments/concurrency.test.ts \
  --exclude test/services/rabbitmq.test.ts \
  --exclude test/services/postgresql-security.test.ts \
  --exclude test/services/mariadb-security.test.ts \
  --exclude test/services/isolation.test.ts \
  --exclude test/cli/ssh.test.ts \
  --exclude test/server/ssh.test.ts \
  --exclude test/server/git-push.test.ts \
  "$@"
