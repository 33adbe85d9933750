#!/usr/bin/env bash
# The quick start: labtest's main job on the bundled example app (examples/hello), on the
# embedded laboratory (this machine): create an experiment of the current branch, with a
# communal PostgreSQL database and a Redis server of its own, and show its page through the
# laboratory's router. Re-running replaces the experiment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node-deps.sh
bash scripts/infra/setup.sh
npm run --silent build
cd examples/hello
labtest() { node ../../bin/labtest.js "$@"; }
if labtest status quickstart >/dev/null; then labtest delete quickstart; fi
labtest create --name quickstart
url=$(labtest --json status quickstart | node -e 'process.stdin.on("data", (d) => console.log(JSON.parse(d).url))')
host=${url#http://}; host=${host%%:*}
port=${url##*:}; port=${port%/}
echo "GET $url"
curl --silent --show-error --header "Host: $host" "http://127.0.0.1:$port/"
