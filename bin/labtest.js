#!/usr/bin/env node
// A key's forced command is relayed to a running `labtest serve` before anything else loads.
import { relayedSession } from "../dist/server/relay.js";

const argv = process.argv.slice(2);
const relayed = await relayedSession(argv, process.env);
if (relayed === undefined) {
  const { main } = await import("../dist/cli/main.js");
  process.exitCode = await main(argv);
} else process.exitCode = relayed;
