import { readFile } from "node:fs/promises";

/** How a supervised app fares, as its supervisor records it (the local runtime). */
export interface SupervisedState {
  /** The app's process (the leader of its process group), while there is one. */
  pid: number | null;
  /** When that process started (ProcessIdentity), so that a later process given its pid is not taken for it. */
  startTime?: string;
  /** How many times the supervisor started it. */
  starts: number;
  /** Whether it runs now (false while the supervisor waits to restart it). */
  running: boolean;
  /** How the app last ended: an exit code, a signal or why it could not start. */
  lastExit: { exit: string; at: string } | null;
}

/** The state a supervisor recorded in `file`; undefined before its first start. */
export async function readSupervisedState(file: string): Promise<SupervisedState | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as SupervisedState;
  } catch {
    return undefined;
  }
}
