/**
 * The router's serving process, run by its daemon: `node router-process.js <home> <port> <address>
 * <settings>`. It serves the experiments recorded in the laboratory's registry, reading it for
 * every request, rebuilds a damaged registry from what runs (as labtest commands do), and asks
 * the runtimes why an app does not answer. It lives here, where the laboratory is put
 * together, so that the router (lab/) knows nothing of experiments: it is handed its routes.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import pTimeout from "p-timeout";
import { reconcileExperiments } from "../experiments/reconcile.js";
import { ExperimentRegistry, type ExperimentRow, isDamaged } from "../experiments/registry.js";
import type { appRuntimes } from "../experiments/runtimes/index.js";
import { Registry } from "../lab/registry.js";
import type { NoAnswer, Route } from "../lab/router.js";
import { LOOPBACK } from "../lab/router.js";
import type { ServingSettings } from "../lab/router-control.js";
import { serveRouter } from "../lab/router-serve.js";

const [home = "", portText, address = LOOPBACK, settingsText] = process.argv.slice(2);
const port = Number(portText);
// A daemon started by an older labtest passes no settings: it served the router's own URLs, trusting no proxy.
const settings: ServingSettings = settingsText
  ? JSON.parse(settingsText)
  : { publicBase: { scheme: "http", port }, trustedProxies: [] };
const file = join(home, "experiments.db");
let opened: { registry: ExperimentRegistry; inode: number } | undefined;
let rebuilding: Promise<void> | undefined;

/**
 * The registry, opened anew when its file was replaced (set aside when damaged, or lost) or when
 * it could not be opened before. A damaged file is set aside by opening it, and the new one
 * filled from what runs, as any labtest command would: the router does not wait for one.
 */
function registry(): ExperimentRegistry {
  const inode = statSync(file, { throwIfNoEntry: false })?.ino;
  if (opened && opened.inode === inode) return opened.registry;
  opened?.registry.close();
  opened = undefined;
  const fresh = new ExperimentRegistry(file);
  opened = { registry: fresh, inode: statSync(file).ino };
  if (inode !== undefined && opened.inode !== inode)
    rebuilding ??= recordRunning(fresh).finally(() => {
      rebuilding = undefined;
    });
  return fresh;
}

/** Records the experiments that run in `fresh`, the registry that replaced a damaged one. */
async function recordRunning(fresh: ExperimentRegistry): Promise<void> {
  try {
    await reconcileExperiments({ home, registry: fresh, runtimes: await loadedRuntimes() });
  } catch (error) {
    process.stderr.write(`${new Date().toISOString()} cannot rebuild the registry: ${String(error)}\n`);
  }
}

/** What `read` finds in the registry; a 503 (an error) while a damaged one is rebuilt. */
function fromRegistry<T>(read: (registry: ExperimentRegistry) => T): T {
  if (rebuilding) throw new Error("the registry was damaged; it is being rebuilt from what runs");
  try {
    return read(registry());
  } catch (error) {
    if (isDamaged(error)) setAside();
    throw error;
  }
}

/** Lets go of the damaged registry it holds open: opening it again sets it aside and starts the rebuild. */
function setAside(): void {
  opened?.registry.close();
  opened = undefined;
  try {
    registry();
  } catch {
    // Not opened: the next request tries again.
  }
}

const toRoute = (row: ExperimentRow): Route => ({
  host: row.host,
  target: `http://127.0.0.1:${row.port}`,
  app: row.app,
  name: row.name,
  branch: row.branch,
});

type AppRuntimes = ReturnType<typeof appRuntimes>;

let runtimes: Promise<AppRuntimes> | undefined;

/**
 * The apps' runtimes, loaded when an app first fails to answer rather than at start: loading them
 * (the engine's client among them) takes seconds on a busy machine, and a router restarted after
 * a crash should answer again at once. The engine is the one of the command that started the
 * router (DOCKER_HOST is inherited).
 */
function loadedRuntimes(): Promise<AppRuntimes> {
  runtimes ??= Promise.all([import("../experiments/runtimes/index.js"), import("../lab/docker.js")]).then(
    ([{ appRuntimes }, { dockerEngine }]) =>
      appRuntimes({ home, laboratory: new Registry(home), docker: dockerEngine() }),
  );
  return runtimes;
}

/** What the app's runtime says of an app that did not answer, when it does not run as it should. */
async function whyNoAnswer(route: Route): Promise<NoAnswer | undefined> {
  const row = fromRegistry((registry) => registry.byHost(route.host));
  const runtime = row && (await loadedRuntimes())[row.runtime];
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

serveRouter(home, port, address, settings, {
  route(host) {
    const row = fromRegistry((registry) => registry.byHost(host));
    return row && row.status === "running" ? toRoute(row) : undefined;
  },
  routes: () =>
    fromRegistry((registry) => registry.list())
      .filter((r) => r.status === "running")
      .map(toRoute),
  whyNoAnswer,
  close: () => opened?.registry.close(),
});
