import { readdir, readFile, readlink } from "node:fs/promises";
import pMap from "p-map";

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

/**
 * How many of /proc's files one scan reads at once: a listing's health checks scan for many
 * experiments together, and a process may hold few files (300 experiments under 256 did not fit).
 */
const PROC_READS_AT_ONCE = 16;

/** The command line of every process, by pid (its arguments as written, NUL-separated). */
export async function commandLines(): Promise<Map<number, string>> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name));
  const lines = await pMap(
    pids,
    async (pid) => [Number(pid), await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")] as const,
    { concurrency: PROC_READS_AT_ONCE },
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
  const hits = await pMap(pids, async (pid) => ((await matches(pid).catch(() => false)) ? [pid] : []), {
    concurrency: PROC_READS_AT_ONCE,
  });
  return hits.flat();
}

/**
 * The processes working in `directory` or below it (their current directory); with `marker`,
 * also those whose environment sets that variable to `directory` or a path below it: an app
 * that left its directory (a daemon changes to /) still carries what it was started with, and
 * so do its children.
 */
export function processesIn(directory: string, marker?: string): Promise<number[]> {
  const within = (path: string | undefined) =>
    path !== undefined && (path === directory || path.startsWith(`${directory}/`));
  return processesMatching(
    async (pid) =>
      within(await readlink(`/proc/${pid}/cwd`).catch(() => undefined)) ||
      (marker !== undefined && within(await environmentVariable(pid, marker))),
  );
}

/** The value of `variable` in the environment process `pid` was started with; undefined when unset or not readable (another user's process). */
export async function environmentVariable(pid: number, variable: string): Promise<string | undefined> {
  const environment = await readFile(`/proc/${pid}/environ`, "utf8").catch(() => "");
  const entry = environment.split("\0").find((line) => line.startsWith(`${variable}=`));
  return entry?.slice(variable.length + 1);
}

/** The user id process `pid` runs as; undefined when it is gone. */
export async function processUid(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
  return uid === undefined ? undefined : Number(uid);
}

/** The processes running as user `uid`. */
export function processesOf(uid: number): Promise<number[]> {
  return processesMatching(async (pid) => (await processUid(pid)) === uid);
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

/**
 * Stops a process politely (SIGTERM), then firmly (SIGKILL) after `graceMs`; resolves once it is
 * gone. A process is known by its start as well as its pid, so that a process given the same pid
 * later is never signalled. A negative pid is a process group (kill(2)).
 */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<void> {
  const started = pid > 0 ? (await processIdentity(pid))?.startTime : undefined;
  const gone = async () => {
    if (pid > 0) return started === undefined || (await processIdentity(pid))?.startTime !== started;
    try {
      process.kill(pid, 0);
      return false;
    } catch (error) {
      // EPERM: it is there, but another user's.
      return (error as NodeJS.ErrnoException).code === "ESRCH";
    }
  };
  const waitUntilGone = async (ms: number) => {
    for (let waited = 0; waited < ms && !(await gone()); waited += 50)
      await new Promise((r) => setTimeout(r, 50));
  };
  if (await gone()) return;
  signal(pid, "SIGTERM");
  await waitUntilGone(graceMs);
  if (!(await gone())) signal(pid, "SIGKILL");
  await waitUntilGone(2000);
}

/** Sends `name` to `pid` unless it ended meanwhile; another user's process is an error (EPERM). */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}
