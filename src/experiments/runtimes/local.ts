import { spawn } from "node:child_process";
import { open, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import writeFileAtomic from "write-file-atomic";
import { stopProcess } from "../../lab/processes.js";

/** The supervisor's compiled entry point (the same file serves an installed labtest and the tests, after a build). */
const SUPERVISOR = fileURLToPath(new URL("../../../dist/experiments/supervisor.js", import.meta.url));

export interface LocalApp {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /** The app's (and its supervisor's) output. */
  log: string;
  /** Where the spec is kept (readable by the owner only: it holds the environment). */
  specFile: string;
}

/** Starts the app under a detached supervisor, which outlives labtest; returns the supervisor's pid. */
export async function startLocalApp(app: LocalApp): Promise<number> {
  await writeFileAtomic(
    app.specFile,
    JSON.stringify({ argv: app.argv, cwd: app.cwd, env: app.env, log: app.log }),
    {
      mode: 0o600,
    },
  );
  const log = await open(app.log, "a", 0o600);
  const supervisor = spawn(process.execPath, [SUPERVISOR, app.specFile], {
    detached: true,
    stdio: ["ignore", log.fd, log.fd],
  });
  await log.close();
  supervisor.unref();
  return supervisor.pid ?? 0;
}

/** Whether `pid` is still the supervisor of that spec (a pid can be reused after a reboot). */
export async function localAppRunning(pid: number, specFile: string): Promise<boolean> {
  if (!pid) return false;
  const commandLine = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  return commandLine.split("\0").includes(specFile);
}

/** Stops the supervisor, which stops the app (it gives the app 10 s); waits until both are gone. */
export async function stopLocalApp(pid: number, specFile: string): Promise<void> {
  if (await localAppRunning(pid, specFile)) await stopProcess(pid, 15_000);
}
