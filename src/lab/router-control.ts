import { spawn } from "node:child_process";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pRetry, { AbortError } from "p-retry";
import writeFileAtomic from "write-file-atomic";
import { LabtestError } from "../errors.js";

const DAEMON = fileURLToPath(new URL("../../dist/lab/router-daemon.js", import.meta.url));

/** The router's port on the embedded laboratory: `LABTEST_ROUTER_PORT`, else 8080. */
export function routerPort(env: NodeJS.ProcessEnv = process.env): number {
  return Number(env.LABTEST_ROUTER_PORT || 8080);
}

export interface RouterStatus {
  running: boolean;
  pid: number;
  port: number;
}

/** Whether the laboratory's router runs (its pid and command line, recorded in the home). */
export async function routerStatus(home: string): Promise<RouterStatus> {
  const recorded = await readFile(join(home, "router.json"), "utf8")
    .then((text) => JSON.parse(text) as { pid: number; port: number })
    .catch(() => ({ pid: 0, port: 0 }));
  const commandLine = recorded.pid
    ? await readFile(`/proc/${recorded.pid}/cmdline`, "utf8").catch(() => "")
    : "";
  const args = commandLine.split("\0");
  return { ...recorded, running: args.includes(DAEMON) && args.includes(home) };
}

/** Starts the router unless it runs; resolves once it answers. */
export async function ensureRouter(home: string, port: number): Promise<RouterStatus> {
  const status = await routerStatus(home);
  if (status.running) return status;
  const log = await open(join(home, "router.log"), "a", 0o600);
  const daemon = spawn(process.execPath, [DAEMON, home, String(port)], {
    detached: true,
    stdio: ["ignore", log.fd, log.fd],
  });
  await log.close();
  daemon.unref();
  await writeFileAtomic(join(home, "router.json"), JSON.stringify({ pid: daemon.pid, port }), {
    mode: 0o600,
  });
  try {
    await pRetry(
      async () => {
        if (daemon.exitCode !== null) throw new AbortError(`exited with ${daemon.exitCode}`);
        await fetch(`http://127.0.0.1:${port}/`, {
          headers: { host: "labtest-router-check" },
          signal: AbortSignal.timeout(1000),
        });
      },
      { retries: 100, minTimeout: 50, maxTimeout: 200 },
    );
  } catch (error) {
    const log = await readFile(join(home, "router.log"), "utf8").catch(() => "");
    throw new LabtestError(`the router did not start on port ${port}`, [
      {
        where: join(home, "router.log"),
        what: log.trim().split("\n").slice(-5).join("\n") || String(error),
        fix: "free the port, or set LABTEST_ROUTER_PORT",
      },
    ]);
  }
  return { running: true, pid: daemon.pid ?? 0, port };
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
