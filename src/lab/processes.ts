import { readdir, readFile, readlink } from "node:fs/promises";

/** The command line of every process, by pid (its arguments as written, NUL-separated). */
export async function commandLines(): Promise<Map<number, string>> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name));
  const lines = await Promise.all(
    pids.map(
      async (pid) => [Number(pid), await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")] as const,
    ),
  );
  return new Map(lines);
}

/** The processes whose command line mentions `text` (a data directory, a spec file). */
export async function processesUsing(text: string): Promise<number[]> {
  return [...(await commandLines())].filter(([, line]) => line.includes(text)).map(([pid]) => pid);
}

/** The processes working in `directory` or below it (their current directory). */
export async function processesIn(directory: string): Promise<number[]> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name));
  const inside = await Promise.all(
    pids.map(async (pid) => {
      const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => "");
      return cwd === directory || cwd.startsWith(`${directory}/`) ? [Number(pid)] : [];
    }),
  );
  return inside.flat();
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
