/**
 * The router as a long-running process: `node router-daemon.js <home> <port> <address>`. It
 * serves the experiments recorded in the laboratory's registry, reading it for every request.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import { ExperimentRegistry } from "../experiments/registry.js";
import { createRouter, LOOPBACK, listenAddresses, type Route, type RouterOptions } from "./router.js";

const [home, portText, address = LOOPBACK] = process.argv.slice(2);
const port = Number(portText);
const file = join(home ?? "", "experiments.db");
let opened = new ExperimentRegistry(file);
let inode = statSync(file).ino;

/** The registry, opened anew when its file was replaced (set aside when damaged, or lost). */
function registry(): ExperimentRegistry {
  const now = statSync(file, { throwIfNoEntry: false })?.ino;
  if (now !== inode) {
    opened.close();
    opened = new ExperimentRegistry(file);
    inode = statSync(file).ino;
  }
  return opened;
}

const toRoute = (row: { host: string; port: number; app: string; name: string; branch: string }): Route => ({
  host: row.host,
  target: `http://127.0.0.1:${row.port}`,
  app: row.app,
  name: row.name,
  branch: row.branch,
});

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
};
// One server per address: a Node server listens on one, and `*.localhost` may resolve to either loopback.
const servers = listenAddresses(address).map((host) => createRouter(options).listen(port, host));
process.on("SIGTERM", () => {
  for (const server of servers) server.close();
  opened.close();
  process.exit(0);
});
