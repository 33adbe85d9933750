import type { Command } from "commander";
import { initialDataOf } from "../config/initial-data.js";
import { experimentName } from "../config/names.js";
import { UsageError } from "../errors.js";
import type { Laboratory, ServiceStatus } from "../laboratory/laboratory.js";
import type { Project } from "../laboratory/protocol.js";
import { PROTOCOL_VERSION as v } from "../laboratory/protocol-constants.js";
import { listedApp } from "./config.js";
import { type CliIo, writeJson } from "./io.js";
import { currentBranch, withLab, withProject } from "./laboratory.js";
import type { StateGlobals } from "./state.js";

interface ExperimentOption {
  experiment?: string;
}

/** `labtest services up|down|list|env`: an experiment's backing services, without its app. */
export function registerServicesCommands(program: Command, io: CliIo): void {
  const services = program
    .command("services")
    .description("provision an experiment's backing services (databases, caches) on the laboratory");
  const experimentOption = "-e, --experiment <name>";
  const experimentHelp = "the experiment (default: the current git branch)";

  services
    .command("up [names...]")
    .description("create (or find) the experiment's services, all or NAMES, and wait until they answer")
    .option(experimentOption, experimentHelp)
    .action(async (names: string[], options: ExperimentOption, command: Command) => {
      await withServices(
        io,
        command,
        async (lab, project, experiment, json) => {
          if (!json && io.isTTY)
            io.stderr(
              `bringing up ${(names.length ? names : Object.keys(project.config.config.services)).join(", ") || "no services"} for ${experiment}…\n`,
            );
          const statuses = await lab.servicesUp({
            v,
            project,
            experiment,
            ...(names.length ? { names } : {}),
            // The laboratory may be another machine: the working copy's files travel as contents.
            initialData: await initialDataOf(project.config, names),
          });
          if (json) writeJson(io, { experiment, services: statuses });
          else io.stdout(statuses.map(describe).join(""));
        },
        options,
      );
    });

  services
    .command("down [names...]")
    .description("drop the experiment's services, all or NAMES: tenants, dedicated servers and their data")
    .option(experimentOption, experimentHelp)
    .option("--force", "take down a service even though other experiments share it")
    .action(async (names: string[], options: ExperimentOption & { force?: boolean }, command: Command) => {
      await withServices(
        io,
        command,
        async (lab, project, experiment, json) => {
          const { removed } = await lab.servicesDown({
            v,
            app: project.config.config.app_name,
            experiment,
            names,
            force: options.force === true,
          });
          if (json) writeJson(io, { experiment, removed });
          else
            io.stdout(
              removed.length
                ? `removed ${removed.join(", ")} of ${experiment}\n`
                : `${experiment} has no services up\n`,
            );
        },
        options,
      );
    });

  services
    .command("list")
    .description("list this app's services (--all: every app's): who uses what, and who shares whom")
    .option("--all", "every app on the laboratory")
    .option("-a, --app <name>", "another app's services")
    .option("-e, --experiment <name>", "only this experiment's services")
    .action(async (options: { all?: boolean; app?: string; experiment?: string }, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      if (options.all && (options.app || options.experiment))
        throw new UsageError("--all lists every app's services: leave out --app and --experiment");
      const app = options.all ? undefined : (options.app ?? (await listedApp(io, globals, "services")));
      const experiment = options.experiment && experimentName(options.experiment);
      const statuses = await withLab(io, globals, undefined, (lab) =>
        lab.servicesList({ v, ...(app ? { app } : {}), ...(experiment ? { experiment } : {}) }),
      );
      if (globals.json) writeJson(io, { services: statuses });
      else if (statuses.length) io.stdout(statuses.map(describe).join(""));
      else io.stdout(`no services ${app ? `of ${app}` : "on this laboratory"}\n`);
    });

  services
    .command("env")
    .description(
      "print the environment the experiment's app receives for its services (credentials included)",
    )
    .option(experimentOption, experimentHelp)
    .option("--host", "with host and port reachable from the laboratory host instead of the app's")
    .action(async (options: ExperimentOption & { host?: boolean }, command: Command) => {
      await withServices(
        io,
        command,
        async (lab, project, experiment, json) => {
          const env = await lab.servicesEnv({ v, project, experiment, hostReachable: options.host === true });
          if (json) writeJson(io, env);
          else
            io.stdout(
              Object.entries(env)
                .map(([key, value]) => `${key}=${shellQuote(value)}\n`)
                .join(""),
            );
        },
        options,
      );
    });
}

/** One line per service, as `services up` and `services list` print them. */
function describe(s: ServiceStatus): string {
  const endpoint = (e: ServiceStatus["appEndpoint"]) => (e ? `${e.host}:${e.port}` : "-");
  const sharing = [
    s.shares ? `shares ${s.shares}` : "",
    s.sharedBy.length ? `shared by ${s.sharedBy.join(", ")}` : "",
  ]
    .filter(Boolean)
    .join("; ");
  return `${s.app}/${s.experiment}/${s.name}: ${s.kind} on ${s.provider}, ${s.provisionType}, ${s.status} — app ${endpoint(s.appEndpoint)}, host ${endpoint(s.hostEndpoint)}${sharing ? ` (${sharing})` : ""}\n${s.problem ? `  ! ${s.problem}\n` : ""}`;
}

/** `'…'` quoting, so the output can be sourced by a POSIX shell. */
function shellQuote(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]*$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Loads the configuration, names the experiment and opens the laboratory for a command. */
async function withServices(
  io: CliIo,
  command: Command,
  use: (lab: Laboratory, project: Project, experiment: string, json: boolean) => Promise<void>,
  options: ExperimentOption,
): Promise<void> {
  const globals = command.optsWithGlobals<StateGlobals>();
  await withProject(io, globals, async (lab, project, loaded) => {
    const branch = await currentBranch(loaded, options.experiment, {
      where: "--experiment",
      what: "experiment",
      fix: "pass --experiment NAME",
    });
    await use(lab, project, experimentName(branch), globals.json === true);
  });
}
