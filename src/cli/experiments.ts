import type { Command } from "commander";
import { appName, experimentName } from "../config/names.js";
import { printable } from "../config/report.js";
import type { LoadedConfig } from "../config/resolve.js";
import { type Problem, UsageError } from "../errors.js";
import {
  type ExperimentDetails,
  type ExperimentStatus,
  Experiments,
  OutputGoneError,
} from "../experiments/index.js";
import { dockerEngine } from "../lab/docker.js";
import { labtestHome } from "../lab/home.js";
import { routerPort } from "../lab/router-control.js";
import { commandConfig, listedApp } from "./config.js";
import { type CliIo, withStreamedOutput, writeJson, writerStream } from "./io.js";
import { type StateGlobals, withState } from "./state.js";

/** `labtest create|delete|list|status|logs|exec`: experiments on the embedded laboratory. */
export function registerExperimentCommands(program: Command, io: CliIo): void {
  program
    .command("create [branch]")
    .description("create an experiment of BRANCH (default: the current branch) and print its URL")
    .option("-n, --name <name>", "the experiment's name (default: from the branch)")
    .action(async (branch: string | undefined, options: { name?: string }, command: Command) => {
      await withExperiments(io, command, async (lab, loaded, json) => {
        const progress = stepReporter(io, command, loaded);
        const created = await lab.create(
          loaded,
          { ...(branch ? { branch } : {}), ...(options.name ? { name: options.name } : {}) },
          progress,
        );
        if (json) writeJson(io, created);
        else io.stdout(`${created.app}/${created.name} is running at ${created.url}\n`);
      });
    });

  program
    .command("update <name>")
    .description("move an experiment to its branch's newest commit, keeping its services and data")
    .action(async (name: string, _options, command: Command) => {
      await withExperiments(io, command, async (lab, loaded, json) => {
        const progress = stepReporter(io, command, loaded);
        const updated = await lab.update(loaded, experimentName(name), progress);
        if (json) writeJson(io, updated);
        else
          io.stdout(
            `${updated.app}/${updated.name} runs release ${updated.release.slice(0, 12)} at ${updated.url}\n`,
          );
      });
    });

  program
    .command("delete <name>")
    .description("delete an experiment: its app, services, checkout and route")
    .action(async (name: string, _options, command: Command) => {
      await withExperiments(io, command, async (lab, loaded, json) => {
        await lab.delete(loaded.config.app_name, experimentName(name));
        if (json) writeJson(io, { deleted: experimentName(name) });
        else io.stdout(`deleted ${loaded.config.app_name}/${experimentName(name)}\n`);
      });
    });

  program
    .command("list [app]")
    .description("list APP's experiments (default: this app's; --all: every app's)")
    .option("--all", "every app on the laboratory")
    .action(async (named: string | undefined, options: { all?: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      if (named !== undefined && options.all)
        throw new UsageError("list APP or list --all, not both", [
          {
            where: "--all",
            what: `given with APP ${named}`,
            fix: `labtest list ${named}, or labtest list --all`,
          },
        ]);
      const app = options.all
        ? undefined
        : named !== undefined
          ? appName(named)
          : await listedApp(io, globals, "experiments");
      const experiments = await withLaboratory(io, globals, (lab) => lab.list(app));
      if (globals.json) writeJson(io, { experiments });
      else if (experiments.length) io.stdout(experiments.map(describe).join(""));
      else io.stdout(`no experiments ${app ? `of ${app}` : "on this laboratory"}\n`);
    });

  program
    .command("status <name>")
    .description("show one experiment in full: release, app, answer, services, recent output")
    .action(async (name: string, _options, command: Command) => {
      await withExperiments(io, command, async (lab, loaded, json) => {
        const experiment = experimentName(name);
        // The app may print its own secrets: reveal them here too, so that they are masked.
        await lab.revealSecrets(loaded, experiment).catch(() => undefined);
        const found = await lab.details(loaded.config.app_name, experiment, loaded.config.health_check_path);
        if (json) writeJson(io, found ?? null);
        else io.stdout(found ? describeInFull(found) : `no experiment ${experiment}\n`);
        if (!found) io.exitCode = 1;
      });
    });

  program
    .command("logs <name>")
    .description("print the app's output (or, with --service, the last lines of a service's server)")
    .option("-f, --follow", "keep printing as the output grows, until interrupted")
    .option("-s, --service <service>", "a service of the experiment instead of the app")
    .action(async (name: string, options: { follow?: boolean; service?: string }, command: Command) => {
      await withExperiments(io, command, async (lab, loaded) => {
        const [app, experiment] = [loaded.config.app_name, experimentName(name)];
        // An app may print its own secrets: reveal them here too, so that they are masked.
        await lab.revealSecrets(loaded, experiment).catch(() => undefined);
        if (options.service)
          io.stdout(`${await lab.services.serverLogs(app, experiment, options.service)}\n`);
        else if (!options.follow) io.stdout(await printingKeptOutput(io, lab.logs(app, experiment)));
        else {
          const stop = new AbortController();
          process.once("SIGINT", () => stop.abort());
          await withStreamedOutput(io, (output) =>
            lab.followLogs(app, experiment, output.stdout, stop.signal),
          );
        }
      });
    });

  program
    .command("exec <name> <command...>")
    .description("run COMMAND in the experiment's checkout and environment (write -- before it)")
    .action(runInExperiment(io));
}

/** The app's output; when it is gone, what labtest kept of it is printed before the error says why. */
async function printingKeptOutput(io: CliIo, output: Promise<string>): Promise<string> {
  try {
    return await output;
  } catch (error) {
    if (error instanceof OutputGoneError) io.stdout(error.kept);
    throw error;
  }
}

/** The action of `exec NAME -- COMMAND…` (and of LabTest's `test NAME COMMAND…`). */
export function runInExperiment(io: CliIo) {
  return async (name: string, argv: string[], _options: unknown, command: Command): Promise<void> => {
    await withExperiments(io, command, async (lab, loaded) => {
      io.exitCode = await withStreamedOutput(io, (output) =>
        lab.exec(loaded, experimentName(name), argv, {
          stdout: writerStream(output.stdout),
          stderr: writerStream(output.stderr),
        }),
      );
    });
  };
}

/**
 * Where create and update report their steps: on a terminal, or wherever the output goes with
 * `--verbose` or the configuration's `verbose: true` (LabTest's); never into `--json` output.
 */
function stepReporter(
  io: CliIo,
  command: Command,
  loaded: LoadedConfig,
): ((step: string) => void) | undefined {
  const globals = command.optsWithGlobals<{ json?: boolean; verbose?: boolean }>();
  const shown = !globals.json && (io.isTTY || globals.verbose === true || loaded.config.verbose);
  return shown ? (step) => io.stderr(`… ${step}\n`) : undefined;
}

function describe(e: ExperimentStatus): string {
  const services = e.services
    .map((s) => `${s.name} (${s.kind} ${s.provisionType}, ${s.provider})`)
    .join(", ");
  const fared =
    e.restarts > 0 || e.lastExit ? ` (restarts ${e.restarts}, last exit ${e.lastExit ?? "none"})` : "";
  return `${e.app}/${e.name}  ${e.status}${fared}  ${e.url}  branch ${e.branch}  release ${e.release.slice(0, 12)}  ${e.runtime}  ${age(e.createdAt)}${services ? `  services: ${services}` : ""}\n${problemLines(e.problems)}`;
}

/** `  ! app, db: why` lines: the app and services that share a problem (an engine away) on one. */
function problemLines(problems: Problem[]): string {
  const byWhat = new Map<string, string[]>();
  for (const { where, what } of problems) byWhat.set(what, [...(byWhat.get(what) ?? []), where]);
  return [...byWhat].map(([what, where]) => `  ! ${where.join(", ")}: ${what}\n`).join("");
}

/** Everything `status NAME` shows, a line (or a block) per aspect. */
function describeInFull(e: ExperimentDetails): string {
  const answer =
    "error" in e.answer
      ? `no answer at ${e.answer.path}: ${e.answer.error}`
      : `answers ${e.answer.status} at ${e.answer.path} in ${e.answer.ms} ms`;
  const handle = e.runtime === "local" ? `supervisor pid ${e.handle}` : `container ${e.handle.slice(0, 12)}`;
  const exit = e.lastExit ? `, last exit ${e.lastExit}` : "";
  const subject = e.subject ? ` ${printable(e.subject)}` : "";
  const services = e.services.map(
    (s) =>
      `    ${s.name}: ${s.kind} ${s.provisionType} on ${s.provider}, ${s.status} — app ${endpoint(s.appEndpoint)}, host ${endpoint(s.hostEndpoint)}${s.problem ? `\n      ! ${s.problem}` : ""}`,
  );
  const appProblem = e.problems.find((p) => p.where === "app");
  return `${[
    `${e.app}/${e.name}: ${e.status}`,
    `  url:       ${e.url} (${answer})`,
    `  release:   ${e.release.slice(0, 12)}${subject} (branch ${e.branch})`,
    `  app:       ${e.runtime}, ${handle}, restarts ${e.restarts}${exit}`,
    ...(appProblem ? [`    ! ${appProblem.what}`] : []),
    `  deployed:  ${e.updatedAt} (${age(e.updatedAt)} ago)`,
    ...(services.length ? ["  services:", ...services] : ["  services:  none"]),
    ...(e.recentOutput.length ? ["  recent output:", ...e.recentOutput.map((l) => `    ${l}`)] : []),
  ].join("\n")}\n`;
}

function endpoint(e: { host: string; port: number } | null): string {
  return e ? `${e.host}:${e.port}` : "-";
}

/** How long ago, roughly: 42s, 5m, 3h, 2d. */
function age(since: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(since)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

/** Loads the configuration and opens the laboratory's experiments for a command. */
async function withExperiments(
  io: CliIo,
  command: Command,
  use: (lab: Experiments, loaded: LoadedConfig, json: boolean) => Promise<void>,
): Promise<void> {
  const globals = command.optsWithGlobals<StateGlobals>();
  const loaded = await commandConfig(io, globals);
  await withLaboratory(io, globals, (lab) => use(lab, loaded, globals.json === true));
}

/** Opens the laboratory's experiments (its home and state) for a command, and closes them afterwards. */
async function withLaboratory<T>(
  io: CliIo,
  globals: StateGlobals,
  use: (lab: Experiments) => Promise<T>,
): Promise<T> {
  return withState(io, globals, async (opened) => {
    const lab = new Experiments({
      home: labtestHome(io.env),
      state: opened.store,
      routerPort: routerPort(io.env),
      docker: dockerEngine(io.env),
    });
    try {
      return await use(lab);
    } finally {
      await lab.close();
    }
  });
}
