// Named locks between the labtest commands of one laboratory. A lock is a file naming its holder
// (pid and start time), made whole in one step (a link to a finished file), so a command can tell
// at once that the holder of a lock is dead: the lock is taken over then, and gc removes the locks
// killed commands left, without waiting for a lease to run out.
import { randomBytes } from "node:crypto";
import { link, mkdir, readdir, readFile, rename, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LabtestError } from "../errors.js";
import type { Sweep } from "./garbage.js";
import { processIdentity } from "./processes.js";

const SUFFIX = ".lock";
/** Files a command writes beside the locks for a moment: its claim before it links it, a lock it moves aside. */
const TRANSIENT = /\.(claim|abandoned)$/;

/** Waiting for a lock: long enough for another command to start a server and create a tenant (about 6 minutes). */
const WAIT = { firstMs: 10, maxMs: 200, factor: 1.2, attempts: 2000 };

/**
 * Labtest before these locks made a lock a directory and refreshed its time every 2.5 s while it
 * held it: such a directory untouched for this long has no holder.
 */
const DIRECTORY_STALE_MS = 5000;

/**
 * Who holds a lock: a process, as its lock file names it (`<pid> <start time>`: the start time
 * tells a reused pid from the process that took the lock); or, for a lock directory of labtest
 * before these locks, whoever refreshes it.
 */
type Holder = { process: string } | { directory: { abandoned: boolean } };

/** Locks kept as files in one directory (the laboratory's `locks`). */
export class Locks {
  constructor(private readonly directory: string) {}

  /** Runs `work` holding the named lock; other processes (and callers in this one) wait their turn. */
  async hold<T>(name: string, work: () => Promise<T>): Promise<T> {
    const file = await this.acquire(name);
    try {
      return await work();
    } finally {
      await unlink(file).catch(ignoreMissing);
    }
  }

  /** Whether a live command holds the named lock now (one a killed command left is not held). */
  async held(name: string): Promise<boolean> {
    const holder = await holderOf(this.file(name));
    return holder !== undefined && !(await abandoned(holder));
  }

  /**
   * Removes, through `sweep`, what killed commands left here past the grace period: their locks
   * and the files they were about to link or remove.
   */
  async sweep(sweep: Sweep): Promise<void> {
    for (const entry of await readdir(this.directory).catch(() => [] as string[])) {
      if (!entry.endsWith(SUFFIX) && !TRANSIENT.test(entry)) continue;
      const path = join(this.directory, entry);
      const modified = (await stat(path).catch(() => undefined))?.mtimeMs;
      if (modified === undefined || !sweep.old(modified)) continue;
      const holder = await holderOf(path);
      if (holder === undefined || !(await abandoned(holder))) continue;
      await sweep.remove(`lock ${path}`, "the command that held it is gone", async () => {
        if (TRANSIENT.test(entry)) return unlink(path).catch(ignoreMissing);
        // A command may take it over meanwhile: then it is in use again.
        return (await freeIfAbandoned(path)) ? undefined : false;
      });
    }
  }

  private async acquire(name: string): Promise<string> {
    await mkdir(this.directory, { recursive: true, mode: 0o711 });
    const file = this.file(name);
    const claim = `${file}.${process.pid}-${randomBytes(4).toString("hex")}.claim`;
    await writeFile(claim, await thisProcess(), { mode: 0o600 });
    try {
      let wait = WAIT.firstMs;
      for (let attempt = 0; ; attempt++) {
        try {
          await link(claim, file);
          return file;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        }
        if (await freeIfAbandoned(file)) continue;
        if (attempt >= WAIT.attempts) throw stillHeld(name, await holderOf(file));
        await new Promise((resolve) => setTimeout(resolve, wait));
        wait = Math.min(wait * WAIT.factor, WAIT.maxMs);
      }
    } finally {
      await unlink(claim).catch(ignoreMissing);
    }
  }

  private file(name: string): string {
    return join(this.directory, `${name.replace(/[^A-Za-z0-9_.-]/g, "_")}${SUFFIX}`);
  }
}

/**
 * Removes the lock at `file` when its holder is gone; true when the lock is free now. It is moved
 * aside first, and put back when what was moved is not what was found: another command may have
 * removed the abandoned lock and taken it itself in between.
 */
async function freeIfAbandoned(file: string): Promise<boolean> {
  const holder = await holderOf(file);
  if (holder === undefined) return true;
  if (!(await abandoned(holder))) return false;
  if (!("process" in holder))
    return rmdir(file).then(
      () => true,
      () => false,
    );
  const aside = `${file}.${process.pid}-${randomBytes(4).toString("hex")}.abandoned`;
  try {
    await rename(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return true;
    throw error;
  }
  const moved = await readFile(aside, "utf8").catch(() => undefined);
  if (moved !== holder.process) await link(aside, file).catch(() => undefined);
  await unlink(aside);
  return moved === holder.process;
}

/** Who holds the lock at `path`; undefined when there is no lock there. */
async function holderOf(path: string): Promise<Holder | undefined> {
  try {
    return { process: await readFile(path, "utf8") };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code !== "EISDIR") throw error;
    const modified = (await stat(path).catch(() => undefined))?.mtimeMs;
    if (modified === undefined) return undefined;
    return { directory: { abandoned: Date.now() - modified > DIRECTORY_STALE_MS } };
  }
}

async function abandoned(holder: Holder): Promise<boolean> {
  return "process" in holder ? !(await alive(holder.process)) : holder.directory.abandoned;
}

/** Whether the process a lock names still runs (and is the one that took it, not a later one with its pid). */
async function alive(holder: string): Promise<boolean> {
  const [pid, start] = holder.trim().split(" ");
  const id = Number(pid);
  if (!Number.isInteger(id) || id <= 0) return false;
  const now = (await processIdentity(id))?.startTime;
  if (now !== undefined) return !start || now === start;
  try {
    process.kill(id, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** This process as a lock names it. */
async function thisProcess(): Promise<string> {
  return `${process.pid} ${(await processIdentity(process.pid))?.startTime ?? ""}`.trim();
}

function stillHeld(name: string, holder: Holder | undefined): LabtestError {
  const pid = holder && "process" in holder ? holder.process.split(" ")[0] : undefined;
  return new LabtestError(`another labtest command has held the lock ${name} for minutes`, [
    {
      where: pid ? `process ${pid}` : `lock ${name}`,
      what: "it still runs, working on what this command needs",
      fix: "wait for it to finish and run this command again, or stop that process",
    },
  ]);
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== "ENOENT") throw error;
}
