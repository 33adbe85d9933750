import { readdir, readFile } from "node:fs/promises";

/** The processes whose command line mentions `text` (a data directory, a spec file). */
export async function processesUsing(text: string): Promise<number[]> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name));
  const using = await Promise.all(
    pids.map(async (pid) => {
      const commandLine = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      return commandLine.includes(text) ? Number(pid) : null;
    }),
  );
  return using.filter((pid): pid is number => pid !== null);
}

/** Stops a process politely (SIGTERM), then firmly (SIGKILL) after `graceMs`; resolves once it is gone. */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<void> {
  const gone = () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  };
  if (gone()) return;
  process.kill(pid, "SIGTERM");
  for (let waited = 0; waited < graceMs && !gone(); waited += 50) await new Promise((r) => setTimeout(r, 50));
  if (!gone()) process.kill(pid, "SIGKILL");
  for (let waited = 0; waited < 2000 && !gone(); waited += 50) await new Promise((r) => setTimeout(r, 50));
}
