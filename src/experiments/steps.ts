// The steps of bringing a release up, shared by create and update.
import { AsyncLocalStorage } from "node:async_hooks";
import { access } from "node:fs/promises";
import { basename, join } from "node:path";
import { execa } from "execa";
import pRetry, { AbortError } from "p-retry";
import { type LoadedConfig, loadConfig } from "../config/resolve.js";
import { resolvesInside } from "../lab/confine.js";
import { commandArgv } from "./command.js";
import { ExperimentError } from "./errors.js";

/** How long an app may take to answer its first HTTP request, unless the laboratory says otherwise. */
export const ANSWER_TIMEOUT_MS = 60_000;

/**
 * The configuration as the experiment's branch has it: its services, environment and commands
 * may differ from the working copy's. The app's identity (name, repository) stays the local one,
 * and so do options the user set with LABTEST_<OPTION> variables.
 * The file must be the branch's own: a link out of the checkout is refused.
 */
export async function branchConfiguration(
  local: LoadedConfig,
  appDirectory: string,
  checkout: string,
): Promise<LoadedConfig> {
  const file = join(appDirectory, basename(local.file));
  if (
    !(await access(file).then(
      () => true,
      () => false,
    ))
  )
    return local;
  if (!(await resolvesInside(checkout, file)))
    throw new ExperimentError(`the branch's ${basename(file)} leads outside its checkout`, [
      {
        where: file,
        what: "a symbolic link to a file that is not the branch's",
        fix: "commit the configuration itself, not a link to it",
      },
    ]);
  const { app_name, code_repo_url } = local.config;
  return loadConfig({ configPath: file, identity: { app_name, code_repo_url }, env: local.variables });
}

/**
 * Runs a configured command (split like a shell would, but without one) in the app's
 * environment, as the app's account when it has one.
 */
export async function runStep(
  option: string,
  command: string,
  cwd: string,
  env: Record<string, string>,
  account?: { uid: number; gid: number },
): Promise<void> {
  const [program, ...args] = commandArgv(option, command, env);
  const result = await execa(program ?? "", args, {
    cwd,
    env,
    ...(account ? { uid: account.uid, gid: account.gid } : {}),
    extendEnv: false,
    reject: false,
    all: true,
  });
  const exit = result.exitCode ?? result.signal;
  await keepOutput(`${option} (exit ${exit})`, String(result.all ?? ""));
  if (result.exitCode !== 0) throw stepFailure(option, command, exit, String(result.all ?? ""));
}

/** Keeps a section of a release's output for `labtest logs`: what a step printed, or an app that labtest removed. */
export type OutputKeeper = (section: string, output: string) => Promise<void>;

const outputKeeper = new AsyncLocalStorage<OutputKeeper>();

/** Runs `operation` with `keeper` keeping what its steps print (the release's, for `labtest logs`). */
export function withOutputKeeper<T>(keeper: OutputKeeper, operation: () => T): T {
  return outputKeeper.run(keeper, operation);
}

/** Hands `output` to the keeper of the operation this runs in, under the heading `section`. */
export async function keepOutput(section: string, output: string): Promise<void> {
  await outputKeeper.getStore()?.(section, output);
}

const rerun = new AsyncLocalStorage<string>();

/** Runs `operation` with `command` (`labtest update main`) as what its failed steps say to run again. */
export function withRerun<T>(command: string, operation: () => T): T {
  return rerun.run(command, operation);
}

/** What to do once a failed step is fixed: commit, and run the command that failed again. */
export function rerunAdvice(): string {
  return `commit the fix, then run ${rerun.getStore() ?? "the labtest command"} again`;
}

/** A configured command that failed, with its output from the first line (bounded). */
export function stepFailure(
  option: string,
  command: string,
  exit: number | string | undefined,
  output: string,
): ExperimentError {
  return new ExperimentError(`${option} failed (exit ${exit})`, [
    {
      where: `labtest.${option}`,
      what: `${command}\n${boundedOutput(output)}`,
      fix: `fix the command or the code it runs, ${rerunAdvice()}`,
    },
  ]);
}

/** The end of a program's output, as errors show it. */
export function lastLines(output: string, count = 20): string {
  return output.trim().split("\n").slice(-count).join("\n");
}

const STOPPED = "the app stopped";

/** How to tell whether a starting app is still alive, and what it said. */
export interface StartingApp {
  /** The path it is asked for (health_check_path). */
  path: string;
  /** False once the app has exited (a crash while starting is not waited through). */
  running: () => Promise<boolean>;
  /** Everything it printed since this start. */
  output: () => Promise<string>;
  /** The TCP ports it listens on now, to tell a wrong port from a slow start. */
  listening: () => Promise<number[]>;
  /** What listens on $PORT: "start_command", "the image's CMD". */
  starter: string;
  /** $PORT as the app sees it (inside a container, not the published port). */
  appPort: number;
}

/**
 * Waits until the app answers HTTP on `port` at its health check path (any status). Fails as
 * soon as it exits, or at the deadline, with its output from the first line and advice that fits
 * what it did.
 */
export async function waitForAnswer(
  port: number,
  app: StartingApp,
  timeoutMs = ANSWER_TIMEOUT_MS,
): Promise<void> {
  try {
    await pRetry(
      async () => {
        if (!(await app.running())) throw new AbortError(STOPPED);
        await fetch(`http://127.0.0.1:${port}${app.path}`, { signal: AbortSignal.timeout(2000) });
      },
      { retries: 100_000, minTimeout: 50, maxTimeout: 100, factor: 1.2, maxRetryTime: timeoutMs },
    );
  } catch (error) {
    // p-retry rejects with the error given to AbortError.
    const stopped = (error as Error).message === STOPPED;
    throw new ExperimentError(
      stopped
        ? "the app exited before it answered"
        : `the app did not answer on port ${port} within ${timeoutMs / 1000} s`,
      [
        {
          where: "the app's output",
          what: boundedOutput(await app.output().catch(() => "")) || "(none)",
          fix: stopped ? "fix what its output says" : await notAnswering(app, timeoutMs),
        },
      ],
      { cause: error },
    );
  }
}

/**
 * Advice for an app that runs but does not answer: $PORT only when it listens on another port;
 * else what it listens on, for its output to tell why it answered nothing.
 */
async function notAnswering(app: StartingApp, timeoutMs: number): Promise<string> {
  const ports = await app.listening().catch(() => [] as number[]);
  const others = ports.filter((p) => p !== app.appPort);
  if (others.length > 0)
    return `it listens on port ${others.join(", ")}, not on $PORT (${app.appPort}): make ${app.starter} listen on $PORT`;
  const within = `within ${timeoutMs / 1000} s`;
  if (ports.length > 0)
    return `it listens on its port but answered nothing at ${app.path} ${within}: see in its output what it waits for, or set health_check_path to a path it answers at once`;
  return `it runs but listens on no TCP port yet (none ${within}): see in its output what it waits for before it listens`;
}

/** Lines of output an error shows at most: the first ones (where causes are) and the last ones. */
const SHOWN_LINES = 60;

/** A program's whole output when it is short; else its beginning and end, with how much was left out. */
export function boundedOutput(output: string): string {
  const lines = output.trimEnd().split("\n");
  if (lines.length <= SHOWN_LINES) return lines.join("\n").trim();
  const half = SHOWN_LINES / 2;
  const skipped = lines.length - SHOWN_LINES;
  return [
    ...lines.slice(0, half),
    `… ${skipped} more lines (labtest logs shows them all) …`,
    ...lines.slice(-half),
  ].join("\n");
}
