import { mkdir, readdir, readFile, rm, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import pMap from "p-map";
import writeFileAtomic from "write-file-atomic";
import { shortHash } from "../config/names.js";
import type { Sweep } from "./garbage.js";
import { type HoldOptions, type LockHolder, type LockOwner, Locks } from "./locks.js";

/**
 * Files a listing reads at once: a laboratory has hundreds of records, a process a limited
 * number of descriptors (1024 by default) that other work needs too.
 */
export const OPEN_FILES_AT_ONCE = 32;

/**
 * The laboratory's own records under its home: JSON files readable only by the laboratory's
 * owner (they hold credentials), written atomically, and named locks that serialise work on
 * one server or one experiment's service across processes.
 */
export class Registry {
  /** Names this laboratory in labels of what it creates elsewhere (Docker), unique per home. */
  readonly id: string;
  private readonly locks: Locks;

  constructor(readonly home: string) {
    this.id = shortHash(home);
    this.locks = new Locks(join(home, "locks"));
  }

  /** The path of a record, e.g. `("services", app, experiment, "db")` → …/services/app/experiment/db.json. */
  path(...segments: string[]): string {
    return `${join(this.home, ...segments)}.json`;
  }

  /** A directory the laboratory keeps for a record (a server's data, its log). */
  directory(...segments: string[]): string {
    return join(this.home, ...segments);
  }

  async read<T>(...segments: string[]): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(this.path(...segments), "utf8")) as T;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  async write(value: unknown, ...segments: string[]): Promise<void> {
    const file = this.path(...segments);
    for (let attempt = 1; ; attempt++) {
      await this.ensureDirectory(dirname(file));
      try {
        await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
        return;
      } catch (error) {
        // Another command removed the folder as its last record went (remove): make it again.
        if ((error as NodeJS.ErrnoException).code !== "ENOENT" || attempt === 5) throw error;
      }
    }
  }

  /** Removes a record, and its folders as they empty (a deleted experiment's, then its app's). */
  async remove(...segments: string[]): Promise<void> {
    await rm(this.path(...segments), { force: true });
    for (let depth = segments.length - 1; depth > 1; depth--)
      if (!(await removeIfEmpty(join(this.home, ...segments.slice(0, depth))))) return;
  }

  /** Every record under a folder, at any depth (e.g. all services, or one experiment's). */
  list<T>(...segments: string[]): Promise<T[]> {
    return this.readRecords<T>(segments, true);
  }

  /** The records directly in a folder: a server's directory beside its record holds its data. */
  children<T>(...segments: string[]): Promise<T[]> {
    return this.readRecords<T>(segments, false);
  }

  private async readRecords<T>(segments: string[], recursive: boolean): Promise<T[]> {
    let entries: string[];
    try {
      entries = await readdir(join(this.home, ...segments), { recursive });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    const records: (T | undefined)[] = await pMap(
      entries.filter((entry) => entry.endsWith(".json")).sort(),
      (entry) => this.read<T>(...segments, entry.slice(0, -".json".length)),
      { concurrency: OPEN_FILES_AT_ONCE },
    );
    return records.filter((r): r is T => r !== undefined);
  }

  /**
   * Runs `work` holding the named lock; other processes (and callers in this one) wait their
   * turn. `work`'s signal aborts when another command cancels it (see `cancelLock`).
   */
  withLock<T>(name: string, work: (signal: AbortSignal) => Promise<T>, options?: HoldOptions): Promise<T> {
    return this.locks.hold(name, work, options);
  }

  /** Asks the live holder of the named lock to stop, as `by`; resolves to it (undefined: none). */
  cancelLock(name: string, by: LockOwner): Promise<LockHolder | undefined> {
    return this.locks.cancel(name, by);
  }

  /** Whether a live command holds the named lock now (a killed command's lock is not held). */
  held(name: string): Promise<boolean> {
    return this.locks.held(name);
  }

  /** Removes, through `sweep`, the locks killed commands left, past the grace period. */
  sweepLocks(sweep: Sweep): Promise<void> {
    return this.locks.sweep(sweep);
  }

  /**
   * Directories are traversable by everyone but listable only by the owner: native servers
   * running under their own accounts must reach their data directories below the home.
   */
  async ensureDirectory(path: string): Promise<void> {
    await mkdir(path, { recursive: true, mode: 0o711 });
  }
}

/** Removes a directory if it is empty; false when it holds something (or is gone already). */
async function removeIfEmpty(directory: string): Promise<boolean> {
  try {
    await rmdir(directory);
    return true;
  } catch (error) {
    if (["ENOTEMPTY", "EEXIST", "ENOENT"].includes((error as NodeJS.ErrnoException).code ?? "")) return false;
    throw error;
  }
}
