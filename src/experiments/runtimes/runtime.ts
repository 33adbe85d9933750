import type { Writable } from "node:stream";
import type { ExperimentConfig } from "../../config/resolve.js";
import type { Sweep } from "../../lab/garbage.js";
import type { ExperimentIdentity } from "../environment.js";
import type { ExperimentRow } from "../registry.js";
import type { Runtime } from "./names.js";

/** Steps of a long operation, for progress on a terminal. */
export type Progress = (step: string) => void;

/** A checked-out release of an experiment's app, its services up, ready to be built and started. */
export interface AppRelease {
  identity: ExperimentIdentity;
  /** Where the app's configuration sits in the checkout: its commands run here. */
  appDirectory: string;
  /** The configuration as the branch has it, and its file (for error messages). */
  config: ExperimentConfig;
  configFile: string;
  /**
   * APP_NAME, EXPERIMENT, BRANCH_NAME, RELEASE, VIRTUAL_HOST and the configured variables; from
   * launch on, the services' variables too (the build runs while the services come up).
   */
  env: Record<string, string>;
}

/** A release whose build is done: for the docker runtime, its image. */
export interface PreparedRelease extends AppRelease {
  image: string | null;
}

/** A release that answers HTTP: on `port` of the laboratory's loopback, known to its runtime by `handle`. */
export interface StartedApp {
  port: number;
  handle: string;
}

/**
 * How a recorded app fares: running; restarting (it died and will be started again); stopped;
 * orphaned (its supervisor is gone but the app still serves); or unreachable (it may run, but
 * nothing reaches it: its engine is away, its network gone). `restarts` counts the times it
 * died since its release started; `lastExit` says how it last ended; `problem` why it does not
 * serve, where the runtime can tell.
 */
export interface AppHealth {
  state: "running" | "restarting" | "stopped" | "orphaned" | "unreachable";
  restarts: number;
  lastExit: string | null;
  problem?: string;
}

/** Where `exec` writes what the command prints. */
export interface ExecOutput {
  stdout: Writable;
  stderr: Writable;
}

/** How an experiment's app is built, started, watched and removed: as a process, or in Docker. */
export interface AppRuntime {
  readonly name: Runtime;
  /** Rejects a configuration this runtime cannot run, before anything is made. */
  check(config: ExperimentConfig, file: string): void;
  /** Builds the release (app_build_command; the image), which needs no services. */
  prepare(
    release: AppRelease,
    previous: ExperimentRow | undefined,
    progress: Progress,
  ): Promise<PreparedRelease>;
  /**
   * Runs before_start_command and starts the prepared release beside `previous` (the running
   * release, on update) until it answers. On failure nothing of the new release is left and
   * `previous` runs on unchanged.
   */
  launch(
    release: PreparedRelease,
    previous: ExperimentRow | undefined,
    progress: Progress,
  ): Promise<StartedApp>;
  /** Removes a prepared release that will not be launched, leaving `previous` as it was. */
  discard(release: PreparedRelease, previous: ExperimentRow | undefined): Promise<void>;
  /** Stops a release that `current` replaced, and removes what only it used. */
  retire(previous: ExperimentRow, current: StartedApp): Promise<void>;
  /** How the app fares now: what `status` shows. */
  health(row: ExperimentRow): Promise<AppHealth>;
  /** The app's output so far. */
  logs(row: ExperimentRow): Promise<string>;
  /** Writes the app's output as it grows, from the start, until `signal` aborts. */
  followLogs(row: ExperimentRow, write: (text: string) => void, signal: AbortSignal): Promise<void>;
  /**
   * Runs `argv` where the app runs, in its environment; resolves to the exit code. When `signal`
   * aborts, stops the command with whatever it started (SIGTERM, then SIGKILL after a grace).
   */
  exec(
    row: ExperimentRow,
    release: AppRelease,
    argv: string[],
    output: ExecOutput,
    signal?: AbortSignal,
  ): Promise<number>;
  /** Files in the experiment's directory that belong to the running release (gc keeps them). */
  files(row: ExperimentRow): string[];
  /**
   * The experiments whose apps run in this runtime, as far as the runtime itself tells (their
   * checkout may be unknown): the truth from which a lost registry is rebuilt.
   */
  discover(): Promise<ExperimentRow[]>;
  /** Removes every app of the experiment, recorded or not (a command may have died before recording it). */
  remove(experiment: { app: string; name: string }): Promise<void>;
  /**
   * Removes, through `sweep`, what this runtime made outside the laboratory's home that none of
   * `rows` accounts for, past the sweep's grace period.
   */
  collectGarbage(rows: ExperimentRow[], sweep: Sweep): Promise<void>;
}
