import { spawn } from "node:child_process";
import { open, readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pRetry, { AbortError } from "p-retry";
import writeFileAtomic from "write-file-atomic";
import { LabtestError } from "../errors.js";
import { LOOPBACK } from "./router.js";

const DAEMON = fileURLToPath(new URL("../../dist/lab/router-daemon.js", import.meta.url));

/** The router's port on the embedded laboratory: `LABTEST_ROUTER_PORT`, else 8080. */
export function routerPort(env: NodeJS.ProcessEnv = process.env): number {
  return Number(env.LABTEST_ROUTER_PORT || 8080);
}

/** Why `address` cannot be where the router listens (`localhost` or an IP address), or undefined. */
export function listenProblem(address: string): string | undefined {
  return address === LOOPBACK || isIP(address) !== 0 ? undefined : "is not localhost or an IP address";
}

export interface RouterStatus {
  running: boolean;
  pid: number;
  port: number;
  /** `localhost` (the loopback) or the IP address it listens on, `0.0.0.0` or `::` for all. */
  address: string;
}

/** Whether the laboratory's router runs (its pid and command line, recorded in the home). */
export async function routerStatus(home: string): Promise<RouterStatus> {
  const recorded = await readFile(join(home, "router.json"), "utf8")
    .then((text) => JSON.parse(text) as Partial<RouterStatus>)
    .catch((): Partial<RouterStatus> => ({}));
  const { pid = 0, port = 0, address = LOOPBACK } = recorded;
  const commandLine = pid ? await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "") : "";
  const args = commandLine.split("\0");
  return { pid, port, address, running: args.includes(DAEMON) && args.includes(home) };
}

/**
 * Starts the router on `address` unless it runs there; resolves once it answers. Without an
 * address, it listens where it last did (an administrator's choice outlives a restart), else
 * on the loopback.
 */
export async function ensureRouter(home: string, port: number, address?: string): Promise<RouterStatus> {
  const status = await routerStatus(home);
  const listen = address ?? status.address;
  if (status.running && status.address === listen) return status;
  if (status.running) await stopRouter(home);
  const log = await open(join(home, "router.log"), "a", 0o600);
  const daemon = spawn(process.execPath, [DAEMON, home, String(port), listen], {
    detached: true,
    stdio: ["ignore", log.fd, log.fd],
  });
  await log.close();
  daemon.unref();
  const started = { running: true, pid: daemon.pid ?? 0, port, address: listen };
  await writeFileAtomic(join(home, "router.json"), JSON.stringify(started), { mode: 0o600 });
  try {
    await pRetry(
      async () => {
        if (daemon.exitCode !== null) throw new AbortError(`exited with ${daemon.exitCode}`);
        await fetch(`http://${probeHost(listen)}:${port}/`, {
          headers: { host: "labtest-router-check" },
          signal: AbortSignal.timeout(1000),
        });
      },
      { retries: 100, minTimeout: 50, maxTimeout: 200 },
    );
  } catch (error) {
    const log = await readFile(join(home, "router.log"), "utf8").catch(() => "");
    throw new LabtestError(`the router did not start on ${listen} port ${port}`, [
      {
        where: join(home, "router.log"),
        what: log.trim().split("\n").slice(-5).join("\n") || String(error),
        fix: "free the port, or set LABTEST_ROUTER_PORT; check the address is this machine's",
      },
    ]);
  }
  return started;
}

/** Where this machine reaches a router listening on `address`, as a URL's host. */
function probeHost(address: string): string {
  if (address === LOOPBACK || address === "0.0.0.0") return "127.0.0.1";
  if (address === "::") return "[::1]";
  return isIP(address) === 6 ? `[${address}]` : address;
}

/** Stops the router if it runs. */
export async function stopRouter(home: string): Promise<boolean> {
  const status = await routerStatus(home);
  if (!status.running) return false;
  process.kill(status.pid, "SIGTERM");
  for (let waited = 0; waited < 5000 && (await routerStatus(home)).running; waited += 50)
    await new Promise((resolve) => setTimeout(resolve, 50));
  return true;
}
