// The steps of bringing a release up, shared by create and update.
import { access, readFile } from "node:fs/promises";
import { basename, join, relative } from "node:path";
import { execa, parseCommandString } from "execa";
import pRetry, { AbortError } from "p-retry";
import { gitToplevel } from "../config/git.js";
import { type LoadedConfig, loadConfig } from "../config/resolve.js";
import { ExperimentError } from "./errors.js";

/** How long an app may take to answer its first HTTP request, unless the laboratory says otherwise. */
export const ANSWER_TIMEOUT_MS = 60_000;

/**
 * The configuration as the experiment's branch has it: its services, environment and commands
 * may differ from the working copy's. The app's identity (name, repository) stays the local one.
 */
export async function branchConfiguration(local: LoadedConfig, appDirectory: string): Promise<LoadedConfig> {
  const file = join(appDirectory, basename(local.file));
  if (
    !(await access(file).then(
      () => true,
      () => false,
    ))
  )
    return local;
  const loaded = await loadConfig({ configPath: file });
  return {
    ...loaded,
    config: { ...loaded.config, app_name: local.config.app_name, code_repo_url: local.config.code_repo_url },
  };
}

/**
 * Where the configuration sits inside its repository: the app runs from the same place in the
 * checkout (an app in a subdirectory of a larger repository, like the bundled example).
 */
export async function configSubdirectory(loaded: LoadedConfig): Promise<string> {
  const toplevel = await gitToplevel(loaded.directory);
  return toplevel ? relative(toplevel, loaded.directory) : "";
}

/** Runs a configured command (split like a shell would, but without one) in the app's environment. */
export async function runStep(
  option: string,
  command: string,
  cwd: string,
  env: Record<string, string>,
): Promise<void> {
  const [program, ...args] = parseCommandString(command);
  const result = await execa(program ?? "", args, { cwd, env, extendEnv: false, reject: false, all: true });
  if (result.exitCode !== 0)
    throw new ExperimentError(`${option} failed (exit ${result.exitCode ?? result.signal})`, [
      {
        where: `labtest.${option}`,
        what: `${command}\n${String(result.all ?? "")
          .trim()
          .split("\n")
          .slice(-20)
          .join("\n")}`,
        fix: "fix the command or the code it runs, then create again",
      },
    ]);
}

/** Waits until the app answers HTTP on `port` (any status); fails with its last log lines. */
export async function waitForAnswer(
  port: number,
  log: string,
  running: () => Promise<boolean>,
  timeoutMs = ANSWER_TIMEOUT_MS,
): Promise<void> {
  try {
    await pRetry(
      async () => {
        if (!(await running())) throw new AbortError("its supervisor stopped");
        await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
      },
      { retries: 100_000, minTimeout: 50, maxTimeout: 250, factor: 1.2, maxRetryTime: timeoutMs },
    );
  } catch (error) {
    const output = (await readFile(log, "utf8").catch(() => "")).trim().split("\n").slice(-20).join("\n");
    throw new ExperimentError(
      `the app did not answer on port ${port} within ${timeoutMs / 1000} s`,
      [
        {
          where: "the app's last output",
          what: output || "(none)",
          fix: "make start_command listen on $PORT",
        },
      ],
      { cause: error },
    );
  }
}
