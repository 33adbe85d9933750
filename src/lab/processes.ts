import { readdir, readFile, readlink } from "node:fs/promises";

/**
 * What tells a process from a later one that was given the same pid (after a reboot, or once
 * pids wrap around): when it started, its program and its arguments.
 */
export interface ProcessIdentity {
  /** Clock ticks since boot at its start. */
  startTime: string;
  /** Its program file; undefined where this user may not read it. Servers that rename their title keep it. */
  executable: string | undefined;
  /** Its arguments as it was started (NUL-separated in /proc). */
  argv: string[];
}

/** The identity of process `pid`; undefined when there is no such process (or no /proc). */
export async function processIdentity(pid: number): Promise<ProcessIdentity | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const [fields, commandLine, executable] = await Promise.all([
    statFields(pid),
    readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => undefined),
    readlink(`/proc/${pid}/exe`).catch(() => undefined),
  ]);
  // starttime is field 22 of stat, the 20th after the command name.
  const startTime = fields?.[19];
  if (startTime === undefined || commandLine === undefined) return undefined;
  return { startTime, executable, argv: commandLine.split("\0").filter(Boolean) };
}

/** The fields of /proc/<pid>/stat after the command name (which may itself hold spaces and parentheses). */
async function statFields(pid: number): Promise<string[] | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ");
}

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

/** The processes for which `matches` holds (a process that is gone meanwhile does not). */
async function processesMatching(matches: (pid: number) => Promise<boolean>): Promise<number[]> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
  const hits = await Promise.all(
    pids.map(async (pid) => ((await matches(pid).catch(() => false)) ? [pid] : [])),
  );
  return hits.flat();
}

/** The processes working in `directory` or below it (their current directory). */
export function processesIn(directory: string): Promise<number[]> {
  return processesMatching(async (pid) => {
    const cwd = await readlink(`/proc/${pid}/cwd`);
    return cwd === directory || cwd.startsWith(`${directory}/`);
  });
}

/** The processes running as user `uid`. */
export function processesOf(uid: number): Promise<number[]> {
  return processesMatching(async (pid) => {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) === uid;
  });
}

/** The processes in the network namespace of `pid` (a container's, for its init process). */
export async function processesSharingNetwork(pid: number): Promise<number[]> {
  const namespace = await readlink(`/proc/${pid}/ns/net`);
  return processesMatching(async (other) => (await readlink(`/proc/${other}/ns/net`)) === namespace);
}

/** The processes of process group `pgid` (an app started as a group leader, and its children). */
export function processGroup(pgid: number): Promise<number[]> {
  return processesMatching(async (pid) => Number((await statFields(pid))?.[2]) === pgid);
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
