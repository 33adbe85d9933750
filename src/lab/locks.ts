// Named locks between the labtest commands of one laboratory. A lock is a file naming its holder
// (pid and start time, then who runs which command since when), made whole in one step (a link
// to a finished file), so a command can tell at once that the holder of a lock is dead: the lock
// is taken over then, and gc removes the locks killed commands left, without waiting for a lease
// to run out. A holder may be asked to stop (a delete cancels an update): in this process through
// its AbortSignal, from another through a request file beside the lock, which the holder watches.
import { randomBytes } from "node:crypto";
import { link, mkdir, readdir, readFile, rename, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pRetry from "p-retry";
import { LabtestError } from "../errors.js";
import type { Sweep } from "./garbage.js";
import { processIdentity } from "./processes.js";

const SUFFIX = ".lock";
/**
 * Files a command writes beside the locks: its claim before it links it, a lock it moves aside
 * (both for a moment), its request that the holder stop.
 */
const TRANSIENT = /\.(claim|abandoned|cancel)$/;

/** How long a command waits for a lock by default: long enough for another to build and start an app. */
export const DEFAULT_LOCK_WAIT_MS = 10 * 60_000;

/** Polling a held lock: often at first (most holds are short), then five times a second. */
const POLL = { minTimeout: 10, maxTimeout: 200, factor: 1.2 };

/** How often a holder looks for a request from another process that it stop. */
const CANCEL_POLL_MS = 100;

/** Exit code of a command that gave up waiting for a lock (sysexits EX_TEMPFAIL: try again later). */
export const EXIT_LOCK_HELD = 75;

/**
 * Labtest before these locks made a lock a directory and refreshed its time every 2.5 s while it
 * held it: such a directory untouched for this long has no holder.
 */
const DIRECTORY_STALE_MS = 5000;

/** Who takes a lock, as commands that find it held are told: an identity and what it runs. */
export interface LockOwner {
  /** A token's name, or the system user of a command run on the laboratory. */
  who: string;
  /** What it runs, as a user would type it (labtest update feature). */
  command: string;
}

/** A live holder of a lock, as a waiting command reports it. */
export interface LockHolder extends Partial<LockOwner> {
  pid: number;
  /** Since when it holds the lock; unknown for a lock of a labtest before holders were named. */
  since?: Date;
}

export interface HoldOptions {
  /** What the lock guards, for messages (default: the lock by its name). */
  subject?: string;
  /** Who takes the lock (default: this process, unnamed). */
  owner?: LockOwner;
  /** How long to wait while another holds it, in ms (default DEFAULT_LOCK_WAIT_MS); 0: not at all. */
  waitMs?: number;
  /** Told once, when the lock is found held, by whom: a waiting command says so. */
  onWait?: (holder: LockHolder | undefined) => void;
}

/**
 * Who holds a lock: a process, as its lock file names it (`<pid> <start time> <owner JSON>`: the
 * start time tells a reused pid from the process that took the lock); or, for a lock directory
 * of labtest before these locks, whoever refreshes it.
 */
type Holder = { process: string } | { directory: { abandoned: boolean } };

/** Locks held in this process by lock file: how to stop the work, and the lock file's text. */
const heldHere = new Map<string, { text: string; controller: AbortController }>();

/** Locks kept as files in one directory (the laboratory's `locks`). */
export class Locks {
  constructor(private readonly directory: string) {}

  /**
   * Runs `work` holding the named lock; other processes (and callers in this one) wait their
   * turn, up to `options.waitMs`. `work`'s signal aborts, with a LockCancelledError, when
   * another command cancels it (see `cancel`): it stops at its next safe point.
   */
  async hold<T>(
    name: string,
    work: (signal: AbortSignal) => Promise<T>,
    options: HoldOptions = {},
  ): Promise<T> {
    const { file, text } = await this.acquire(name, options);
    const controller = new AbortController();
    heldHere.set(file, { text, controller });
    const stop = (by: LockOwner) => controller.abort(new LockCancelledError(by, options.owner));
    const watch = setInterval(
      () => void cancelRequest(file, text).then((by) => by && stop(by)),
      CANCEL_POLL_MS,
    );
    try {
      return await work(controller.signal);
    } finally {
      clearInterval(watch);
      heldHere.delete(file);
      await unlink(file).catch(ignoreMissing);
      if (controller.signal.aborted) await unlink(`${file}.cancel`).catch(ignoreMissing);
    }
  }

  /**
   * Asks the live holder of the named lock to stop, as `by`: in this process its work's signal
   * aborts; another process is asked through a file it watches. Resolves to the holder asked,
   * or undefined when none holds the lock. The caller then takes the lock as usual.
   */
  async cancel(name: string, by: LockOwner): Promise<LockHolder | undefined> {
    const file = this.file(name);
    const holder = await holderOf(file);
    if (holder === undefined || !("process" in holder) || (await abandoned(holder))) return undefined;
    const here = heldHere.get(file);
    if (here?.text === holder.process) here.controller.abort(new LockCancelledError(by, ownerOf(here.text)));
    else
      await writeFile(`${file}.cancel`, lockText(await thisProcess(), { ...by, holder: holder.process }), {
        mode: 0o600,
      });
    return holderFrom(holder.process);
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

  private async acquire(name: string, options: HoldOptions): Promise<{ file: string; text: string }> {
    await mkdir(this.directory, { recursive: true, mode: 0o711 });
    const file = this.file(name);
    const claim = `${file}.${process.pid}-${randomBytes(4).toString("hex")}.claim`;
    const me = await thisProcess();
    const waitMs = options.waitMs ?? DEFAULT_LOCK_WAIT_MS;
    const take = async (): Promise<string | undefined> => {
      // Written anew at each try: the lock tells since when it is held, not since when it was wanted.
      const text = lockText(me, { ...options.owner, since: new Date().toISOString() });
      await writeFile(claim, text, { mode: 0o600 });
      try {
        await link(claim, file);
        return text;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        return undefined;
      }
    };
    let told = false;
    try {
      return await pRetry(
        async () => {
          const text = (await take()) ?? ((await freeIfAbandoned(file)) ? await take() : undefined);
          if (text !== undefined) return { file, text };
          const holder = await holderOf(file);
          const known = holder && "process" in holder ? holderFrom(holder.process) : undefined;
          if (!told && waitMs > 0 && holder !== undefined) options.onWait?.(known);
          told ||= holder !== undefined;
          throw new LockHeldError(options.subject ?? `the lock ${name}`, name, known, waitMs);
        },
        {
          ...POLL,
          retries: Number.POSITIVE_INFINITY,
          randomize: false,
          maxRetryTime: waitMs,
          shouldRetry: ({ error }) => error instanceof LockHeldError,
        },
      );
    } finally {
      await unlink(claim).catch(ignoreMissing);
    }
  }

  private file(name: string): string {
    return join(this.directory, `${name.replace(/[^A-Za-z0-9_.-]/g, "_")}${SUFFIX}`);
  }
}

/** A lock's holder in words: who, running what, since when. */
export function describeHolder(holder: LockHolder): string {
  const running = holder.command ? ` running ${holder.command}` : "";
  const since = holder.since ? ` since ${holder.since.toISOString()}` : "";
  return `${holder.who ?? "a labtest command"}${running} (pid ${holder.pid})${since}`;
}

/** A command gave up waiting for a lock another command holds. HTTP 409; exit code 75 (try again later). */
export class LockHeldError extends LabtestError {
  readonly status = 409;

  constructor(subject: string, name: string, holder: LockHolder | undefined, waitedMs: number) {
    const by = holder ? describeHolder(holder) : "another labtest command";
    const waited = waitedMs > 0 ? `; waited ${Math.round(waitedMs / 1000)} s` : "";
    super(
      `${subject} is held by ${by}${waited}`,
      [
        {
          where: holder ? `process ${holder.pid}` : `lock ${name}`,
          what: "it still runs, working on what this command needs",
          fix: "run this command again once it is done, or with --wait SECONDS to wait longer",
        },
      ],
      { exitCode: EXIT_LOCK_HELD },
    );
  }
}

/** The reason a holder's work stops with when another command cancels it. HTTP 409. */
export class LockCancelledError extends LabtestError {
  readonly status = 409;

  constructor(by: LockOwner, holder: Partial<LockOwner> | undefined) {
    super(`${holder?.command ?? "this command"} was cancelled by ${by.command} from ${by.who}`, [
      {
        where: holder?.command ?? "this command",
        what: `${by.command} needed what it was changing; what it had made is undone`,
        fix: "run it again once that command is done, if it is still wanted",
      },
    ]);
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

/** This process as a lock names it: its pid and start time. */
async function thisProcess(): Promise<string> {
  return `${process.pid} ${(await processIdentity(process.pid))?.startTime ?? ""}`;
}

/**
 * A lock file's text: the process, then what else it says as JSON on the same line (labtest
 * before holders were named read the first two words, and still does its job with this).
 */
function lockText(processLine: string, details: object): string {
  return `${processLine} ${JSON.stringify(details)}`;
}

/** What a lock file's text after its process says; empty for a lock of a labtest before holders were named. */
function detailsOf(text: string): Record<string, unknown> {
  const json = /^\d+ \S* ?(\{.*\})\s*$/s.exec(text)?.[1];
  try {
    return json ? (JSON.parse(json) as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The holder a lock file's text names. */
function holderFrom(text: string): LockHolder {
  const details = detailsOf(text);
  const since = typeof details.since === "string" ? new Date(details.since) : undefined;
  return { pid: Number(text.split(" ")[0]), ...ownerOf(text), ...(since ? { since } : {}) };
}

function ownerOf(text: string): Partial<LockOwner> {
  const { who, command } = detailsOf(text);
  return {
    ...(typeof who === "string" ? { who } : {}),
    ...(typeof command === "string" ? { command } : {}),
  };
}

/** Who asked the holder whose lock file reads `text` to stop, through the file beside it; undefined: nobody. */
async function cancelRequest(file: string, text: string): Promise<LockOwner | undefined> {
  const request = await readFile(`${file}.cancel`, "utf8").catch(() => undefined);
  if (request === undefined) return undefined;
  const { who, command, holder } = detailsOf(request);
  // A request left for an earlier holder of the lock is not for this one.
  if (holder !== text || typeof who !== "string" || typeof command !== "string") return undefined;
  return { who, command };
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== "ENOENT") throw error;
}
