/**
 * The router's serving process, run by its daemon: `node router-serve.js <home> <port> <address>`.
 * It serves the experiments recorded in the laboratory's registry, reading it for every request.
 * It exits when it cannot listen on one of its addresses (its daemon starts it again), and when
 * its daemon is gone (a router nobody supervises would keep the port from the next one).
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import pTimeout from "p-timeout";
import { ExperimentRegistry } from "../experiments/registry.js";
import { DockerRuntime } from "../experiments/runtimes/docker.js";
import { LocalRuntime } from "../experiments/runtimes/local.js";
import type { AppRuntime } from "../experiments/runtimes/runtime.js";
import { dockerEngine } from "./docker.js";
import { Registry } from "./registry.js";
import {
  createRouter,
  LOOPBACK,
  listenAddresses,
  type NoAnswer,
  type Route,
  type RouterOptions,
} from "./router.js";

const [home = "", portText, address = LOOPBACK] = process.argv.slice(2);
const port = Number(portText);
const file = join(home, "experiments.db");
let opened: { registry: ExperimentRegistry; inode: number } | undefined;

/**
 * The registry, opened anew when its file was replaced (set aside when damaged, or lost) or when
 * it could not be opened before. A damaged file it holds open fails the lookups (a 503) until a
 * labtest command sets it aside and rebuilds it.
 */
function registry(): ExperimentRegistry {
  const inode = statSync(file, { throwIfNoEntry: false })?.ino;
  if (opened && opened.inode === inode) return opened.registry;
  opened?.registry.close();
  opened = undefined;
  const fresh = new ExperimentRegistry(file);
  opened = { registry: fresh, inode: statSync(file).ino };
  return fresh;
}

const toRoute = (row: { host: string; port: number; app: string; name: string; branch: string }): Route => ({
  host: row.host,
  target: `http://127.0.0.1:${row.port}`,
  app: row.app,
  name: row.name,
  branch: row.branch,
});

const laboratory = new Registry(home);
// The engine is the one of the command that started the router (DOCKER_HOST is inherited).
const runtimes: Record<string, AppRuntime> = {
  local: new LocalRuntime(join(home, "experiments")),
  docker: new DockerRuntime(dockerEngine(), laboratory),
};

/** What the app's runtime says of an app that did not answer, when it does not run as it should. */
async function whyNoAnswer(route: Route): Promise<NoAnswer | undefined> {
  const row = registry().byHost(route.host);
  const runtime = row && runtimes[row.runtime];
  if (!row || !runtime) return undefined;
  // A runtime that cannot tell quickly leaves the bare 502.
  const health = await pTimeout(runtime.health(row), { milliseconds: 3000 });
  if (health.state === "running") return undefined;
  const why =
    health.problem ?? `it is ${health.state}${health.lastExit ? ` (last exit: ${health.lastExit})` : ""}`;
  return {
    reason: `app-${health.state}`,
    text: `labtest: the app of experiment ${row.app}/${row.name} does not answer: ${why}.\nlabtest status ${row.name} shows more.\n`,
  };
}

const options: RouterOptions = {
  route(host) {
    const row = registry().byHost(host);
    return row && row.status === "running" ? toRoute(row) : undefined;
  },
  routes: () =>
    registry()
      .list()
      .filter((r) => r.status === "running")
      .map(toRoute),
  publicPort: port,
  laboratory: laboratory.id,
  whyNoAnswer,
};
// One server per address: a Node server listens on one, and `*.localhost` may resolve to either loopback.
const servers = listenAddresses(address).map((host) =>
  createRouter(options)
    .on("error", (error) => {
      process.stderr.write(
        `${new Date().toISOString()} cannot listen on ${host} port ${port}: ${error.message}\n`,
      );
      process.exit(1);
    })
    .listen(port, host),
);

function stop(): void {
  for (const server of servers) server.close();
  opened?.registry.close();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("disconnect", stop);
