import type { Command } from "commander";
import { gitBranch } from "../config/git.js";
import { experimentName } from "../config/names.js";
import type { LoadedConfig } from "../config/resolve.js";
import { UsageError } from "../errors.js";
import { dockerEngine } from "../lab/docker.js";
import { labtestHome } from "../lab/home.js";
import { experimentServices, type ServiceStatus, Services } from "../services/index.js";
import { commandConfig, listedApp } from "./config.js";
import { type CliIo, writeJson } from "./io.js";
import { type StateGlobals, withState } from "./state.js";

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
        async (lab, loaded, experiment, json) => {
          const request = experimentServices(loaded, experiment);
          if (!json && io.isTTY)
            io.stderr(
              `bringing up ${(names.length ? names : Object.keys(request.services)).join(", ") || "no services"} for ${experiment}…\n`,
            );
          const statuses = await lab.up(request, names);
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
        async (lab, loaded, experiment, json) => {
          const removed = await lab.down(loaded.config.app_name, experiment, {
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
      const statuses = await withLaboratory(io, globals, (lab) =>
        lab.list(app, options.experiment && experimentName(options.experiment), { ping: true }),
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
        async (lab, loaded, experiment, json) => {
          const env = await lab.environment(loaded.config.app_name, experiment, loaded.config.environment, {
            hostReachable: options.host === true,
          });
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

/** Opens the laboratory (its home and state) for a command, and closes it afterwards. */
export async function withLaboratory<T>(
  io: CliIo,
  globals: StateGlobals,
  use: (lab: Services) => Promise<T>,
): Promise<T> {
  return withState(io, globals, async (opened) => {
    const lab = new Services({
      home: labtestHome(io.env),
      state: opened.store,
      docker: dockerEngine(io.env),
    });
    try {
      return await use(lab);
    } finally {
      await lab.close();
    }
  });
}

/** Loads the configuration, names the experiment and opens the laboratory for a command. */
async function withServices(
  io: CliIo,
  command: Command,
  use: (lab: Services, loaded: LoadedConfig, experiment: string, json: boolean) => Promise<void>,
  options: ExperimentOption,
): Promise<void> {
  const globals = command.optsWithGlobals<StateGlobals>();
  const loaded = await commandConfig(io, globals);
  const branch = options.experiment ?? (await gitBranch(loaded.directory));
  if (!branch)
    throw new UsageError("which experiment?", [
      {
        where: "--experiment",
        what: `not given, and ${loaded.directory} is not on a git branch`,
        fix: "pass --experiment NAME",
      },
    ]);
  await withLaboratory(io, globals, (lab) => use(lab, loaded, experimentName(branch), globals.json === true));
}
