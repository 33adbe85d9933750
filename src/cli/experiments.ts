import { type Command, InvalidArgumentError } from "commander";
import { appName, experimentName } from "../config/names.js";
import { printable } from "../config/report.js";
import type { LoadedConfig } from "../config/resolve.js";
import { type Problem, UsageError } from "../errors.js";
import type {
  ExperimentDetails,
  ExperimentStatus,
  Laboratory,
  ServiceStatus,
} from "../laboratory/laboratory.js";
import type { EventSink } from "../laboratory/protocol.js";
import { PROTOCOL_VERSION as v } from "../laboratory/protocol-constants.js";
import { listedApp } from "./config.js";
import { type CliIo, withStreamedOutput, writeJson } from "./io.js";
import { chosenLaboratory, currentBranch, toOutput, withLab, withProject } from "./laboratory.js";
import type { StateGlobals } from "./state.js";

/** `labtest create|delete|list|status|logs|exec`: experiments, through the configuration's laboratory. */
export function registerExperimentCommands(program: Command, io: CliIo): void {
  program
    .command("create [branch]")
    .description(
      "create an experiment of BRANCH (default: the current branch) and print its URL; if it exists, update it",
    )
    .option("-n, --name <name>", "the experiment's name (default: from the branch)")
    .option(...PUSH_OPTION)
    .option(...WAIT_OPTION)
    .action(
      async (
        branch: string | undefined,
        options: { name?: string; wait?: number; push?: boolean },
        command: Command,
      ) => {
        const globals = command.optsWithGlobals<StateGlobals>();
        await withProject(io, globals, async (lab, project, loaded) => {
          const given = await currentBranch(loaded, branch, {
            where: "BRANCH",
            what: "branch",
            fix: "labtest create BRANCH",
          });
          const report = stepReporter(io, command, loaded);
          const created = await lab.create(
            {
              v,
              project,
              branch: given,
              ...(options.name ? { name: options.name } : {}),
              ...(await delivery(io, command, lab, loaded, given)),
              ...waitOf(options),
            },
            report,
          );
          if (globals.json) return writeJson(io, created);
          // Shown as a step already when steps are; a script's log says it once too.
          if (created.existed && !report) io.stderr(`${created.name} exists already: updating it\n`);
          io.stdout(`${created.app}/${created.name} is running at ${created.url}\n`);
        });
      },
    );

  program
    .command("update <name>")
    .description("move an experiment to its branch's newest commit, keeping its services and data")
    .option(...PUSH_OPTION)
    .option(...WAIT_OPTION)
    .action(async (name: string, options: { wait?: number }, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      await withProject(io, globals, async (lab, project, loaded) => {
        const experiment = experimentName(name);
        const app = project.config.config.app_name;
        // The code to send is its branch's: the laboratory knows which (an unknown name it reports itself).
        const branch = (await lab.list({ v, app })).find((e) => e.name === experiment)?.branch;
        const updated = await lab.update(
          {
            v,
            project,
            name: experiment,
            ...(branch ? await delivery(io, command, lab, loaded, branch) : {}),
            ...waitOf(options),
          },
          stepReporter(io, command, loaded),
        );
        if (globals.json) writeJson(io, updated);
        else
          io.stdout(
            `${updated.app}/${updated.name} runs release ${updated.release.slice(0, 12)} at ${updated.url}\n`,
          );
      });
    });

  program
    .command("delete <name>")
    .description(
      "delete an experiment: its app, services, checkout and route (cancelling an update of it); none: nothing to do",
    )
    .option(...WAIT_OPTION)
    .action(async (name: string, options: { wait?: number }, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      await withProject(io, globals, async (lab, project, loaded) => {
        const app = project.config.config.app_name;
        const deletion = await lab.delete(
          { v, app, name: experimentName(name), ...waitOf(options) },
          stepReporter(io, command, loaded),
        );
        if (globals.json) writeJson(io, deletion);
        else if (deletion.deleted === null) io.stderr(`${deletion.note}\n`);
        else io.stdout(`deleted ${app}/${deletion.deleted}\n`);
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
      const experiments = await withLab(io, globals, undefined, (lab) =>
        lab.list({ v, ...(app ? { app } : {}) }),
      );
      if (globals.json) writeJson(io, { experiments });
      else if (experiments.length) io.stdout(experiments.map(describe).join(""));
      else io.stdout(`no experiments ${app ? `of ${app}` : "on this laboratory"}\n`);
    });

  program
    .command("status <name>")
    .description("show one experiment in full: release, app, answer, services, recent output")
    .action(async (name: string, _options, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      await withProject(io, globals, async (lab, project) => {
        const experiment = experimentName(name);
        const found = await lab.status({ v, project, name: experiment });
        if (globals.json) writeJson(io, found);
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
      await withProject(io, command.optsWithGlobals<StateGlobals>(), async (lab, project) => {
        const request = {
          v,
          project,
          name: experimentName(name),
          ...(options.service ? { service: options.service } : {}),
          ...(options.follow ? { follow: true } : {}),
        };
        await untilInterrupted(options.follow === true, (signal) =>
          withStreamedOutput(io, (output) => lab.logs(request, toOutput(output), signal)),
        );
      });
    });

  program
    .command("exec <name> <command...>")
    .description("run COMMAND in the experiment's checkout and environment (write -- before it)")
    .action(runInExperiment(io));
}

/**
 * The action of `exec NAME -- COMMAND…` (and of LabTest's `test NAME COMMAND…`). Ctrl-C stops the
 * command where it runs and ends labtest with 130, as a shell reports a command it interrupted.
 */
export function runInExperiment(io: CliIo) {
  return async (name: string, argv: string[], _options: unknown, command: Command): Promise<void> => {
    await withProject(io, command.optsWithGlobals<StateGlobals>(), async (lab, project) => {
      const request = { v, project, name: experimentName(name), argv };
      await untilInterrupted(true, async (signal) => {
        const ran = await withStreamedOutput(io, (output) => lab.exec(request, toOutput(output), signal));
        // An interrupted remote exec has no answer: the transport let go of it.
        io.exitCode = signal.aborted ? INTERRUPTED : ran.exitCode;
      });
    });
  };
}

/** The exit status of a command ended by Ctrl-C (128 + SIGINT), by the shells' convention. */
const INTERRUPTED = 130;

/** Runs `operation` with a signal that Ctrl-C aborts (when `interruptible`) instead of ending labtest. */
async function untilInterrupted<T>(
  interruptible: boolean,
  operation: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  // Listening until the end, not once: signal-exit (execa's cleanup of its subprocesses)
  // re-raises a SIGINT that no other listener is left to hear, killing labtest by the signal.
  if (interruptible) process.on("SIGINT", interrupt);
  try {
    return await operation(stop.signal);
  } finally {
    process.off("SIGINT", interrupt);
  }
}

const PUSH_OPTION = [
  "--push",
  "send the branch's commits to the laboratory (only those it lacks) instead of letting it fetch code_repo_url",
] as const;

/** What create and update send besides the project (see releaseDelivery), chosen for the laboratory it goes to. */
async function delivery(io: CliIo, command: Command, lab: Laboratory, loaded: LoadedConfig, branch: string) {
  const globals = command.optsWithGlobals<StateGlobals & { push?: boolean }>();
  const report = stepReporter(io, command, loaded);
  // Git and the bundle's making load for create and update alone.
  const { releaseDelivery } = await import("../laboratory/code.js");
  return releaseDelivery(lab, loaded, branch, {
    embedded: (await chosenLaboratory(io, globals, loaded)).kind === "local",
    push: globals.push === true,
    progress: (text) => report?.({ type: "step", text }),
  });
}

/**
 * Where create and update report their steps: on a terminal, or wherever the output goes with
 * `--verbose` or the configuration's `verbose: true` (LabTest's); never into `--json` output.
 */
/** `--wait SECONDS` of the commands that change an experiment another command may be changing. */
const WAIT_OPTION = [
  "--wait <seconds>",
  "how long to wait while another command changes the experiment (default 600; 0: fail at once)",
  waitSeconds,
] as const;

function waitSeconds(text: string): number {
  const seconds = Number(text);
  if (text.trim() === "" || !Number.isFinite(seconds) || seconds < 0)
    throw new InvalidArgumentError(`'${text}' is not a number of seconds (0 or more).`);
  return seconds;
}

function waitOf(options: { wait?: number }): { wait?: number } {
  return options.wait !== undefined ? { wait: options.wait } : {};
}

function stepReporter(io: CliIo, command: Command, loaded: LoadedConfig): EventSink | undefined {
  const globals = command.optsWithGlobals<{ json?: boolean; verbose?: boolean }>();
  const shown = !globals.json && (io.isTTY || globals.verbose === true || loaded.config.verbose);
  return shown ? (event) => event.type === "step" && io.stderr(`… ${event.text}\n`) : undefined;
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
      `    ${s.name}: ${s.kind} ${s.provisionType} on ${s.provider}, ${s.status}${s.size ? `, ${sizeText(s.size)}` : ""} — app ${endpoint(s.appEndpoint)}, host ${endpoint(s.hostEndpoint)}${s.problem ? `\n      ! ${s.problem}` : ""}`,
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

/** A tenant's size as people read it: 7.4 MB, 12 keys, at least 100000 keys. */
function sizeText(size: NonNullable<ServiceStatus["size"]>): string {
  const atLeast = size.atLeast ? "at least " : "";
  if (size.unit === "keys") return `${atLeast}${size.amount} ${size.amount === 1 ? "key" : "keys"}`;
  const [unit, scale] = BYTE_UNITS.find(([, bytes]) => size.amount >= bytes) ?? ["bytes", 1];
  return `${atLeast}${scale === 1 ? size.amount : (size.amount / scale).toFixed(1)} ${unit}`;
}

const BYTE_UNITS: [string, number][] = [
  ["GB", 1024 ** 3],
  ["MB", 1024 ** 2],
  ["kB", 1024],
];

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
