// A release of an experiment: its checkout, its configuration there, its environment, and its
// app launched beside its services.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { LoadedConfig } from "../config/resolve.js";
import { ensureRoute } from "../lab/router-control.js";
import { serviceEnvironment } from "../services/env.js";
import { type ExperimentServices, experimentServices, sentInitialData } from "../services/index.js";
import { checkout } from "./checkout.js";
import type { ReleaseSource } from "./code-store.js";
import { type ExperimentsContext, experimentDirectory, experimentOrigin, type Project } from "./context.js";
import { type ExperimentIdentity, experimentEnvironment, experimentHost } from "./environment.js";
import { ExperimentError } from "./errors.js";
import type { ExperimentRow } from "./registry.js";
import type { AppRelease, Progress, StartedApp } from "./runtimes/runtime.js";
import { branchConfiguration } from "./steps.js";

/** A checked-out commit of an experiment's branch, with the configuration it carries. */
export interface Release {
  identity: ExperimentIdentity;
  release: string;
  subject: string;
  host: string;
  checkout: string;
  appDirectory: string;
  loaded: LoadedConfig;
  /** Its services, their initial data read from its checkout, or sent by the client for its configuration. */
  services: ExperimentServices;
}

/** Clones the experiment's branch from `source` into a new release directory and reads its configuration there. */
export async function checkOut(
  lab: ExperimentsContext,
  project: Project,
  row: ExperimentRow,
  source: ReleaseSource,
  progress: Progress,
): Promise<Release> {
  const config = project.config.config;
  const directory = experimentDirectory(lab.home, row);
  await mkdir(join(directory, "releases"), { recursive: true, mode: 0o700 });
  progress(`checking out ${row.branch}`);
  const checkoutDirectory = join(directory, "releases", `${Date.now()}`);
  const { commit: release, subject } = await checkout(
    source.repository,
    row.branch,
    checkoutDirectory,
    source.commit,
  );
  const host = experimentHost(config, { name: row.name, branch: row.branch, release });
  const clash = lab.registry.byHost(host);
  if (clash && (clash.app !== row.app || clash.name !== row.name))
    throw new ExperimentError(`host name ${host} is taken by experiment ${clash.app}/${clash.name}`, [
      {
        where: "labtest.host_name_pattern",
        what: "two experiments would answer at one URL",
        fix: "choose another --name, or include {experiment} in host_name_pattern",
      },
    ]);
  const { appDirectory, loaded } = await releaseConfiguration(project, checkoutDirectory);
  // What the branch's own configuration names is the branch's to read, or in a directory the
  // administrator allows, and nothing else; the client's configuration came with the contents
  // of its files.
  const fromBranch = loaded.file.startsWith(`${checkoutDirectory}/`);
  const services = fromBranch
    ? experimentServices(loaded, row.name, { checkout: checkoutDirectory, app: row.app, state: lab.state })
    : {
        app: row.app,
        experiment: row.name,
        services: loaded.config.services,
        initialData: sentInitialData(source.initialData),
      };
  return {
    identity: {
      app: row.app,
      name: row.name,
      branch: row.branch,
      release,
      host,
      url: experimentOrigin(host, lab.publicBase),
    },
    release,
    subject,
    host,
    checkout: checkoutDirectory,
    appDirectory,
    loaded,
    services,
  };
}

/** Where the app runs from in the checkout at `checkout`, and its configuration there. */
export async function releaseConfiguration(
  project: Project,
  checkout: string,
): Promise<{ appDirectory: string; loaded: LoadedConfig }> {
  const appDirectory = join(checkout, project.subdirectory);
  return { appDirectory, loaded: await branchConfiguration(project.config, appDirectory, checkout) };
}

/**
 * The runtime builds the release while its services come up; then it runs
 * before_start_command and starts the release until it answers.
 */
export async function launch(
  lab: ExperimentsContext,
  release: Release,
  previous: ExperimentRow | undefined,
  progress: Progress,
): Promise<StartedApp> {
  const { identity, appDirectory, loaded } = release;
  const runtime = lab.runtimes[loaded.config.runtime];
  runtime.check(loaded.config, loaded.file);
  // Secrets are revealed first: one that cannot be is an error before anything starts.
  const configured = await revealedEnvironment(lab, loaded);
  progress("bringing services up");
  const building = experimentEnvironment(
    identity,
    async (explicit, known) => serviceEnvironment({}, explicit, known),
    configured,
  ).then((env) =>
    runtime.prepare(
      { identity, appDirectory, config: loaded.config, configFile: loaded.file, env },
      previous,
      progress,
    ),
  );
  const [services, prepared] = await Promise.allSettled([lab.services.up(release.services), building]);
  if (prepared.status === "rejected") throw prepared.reason;
  if (services.status === "rejected") {
    await runtime.discard(prepared.value, previous);
    throw services.reason;
  }
  const { env } = await appRelease(lab, identity, appDirectory, loaded, configured);
  return runtime.launch({ ...prepared.value, env }, previous, progress);
}

/** The configured environment with its ENC[…] values revealed. */
export function revealedEnvironment(
  lab: ExperimentsContext,
  loaded: LoadedConfig,
): Promise<Record<string, string>> {
  return lab.secrets.reveal(loaded.config.environment, (key) => `${loaded.file}: labtest.environment.${key}`);
}

/** What a runtime needs of a running release: where it is, its configuration and its whole environment. */
export async function appRelease(
  lab: ExperimentsContext,
  identity: ExperimentIdentity,
  appDirectory: string,
  loaded: LoadedConfig,
  configured?: Record<string, string>,
): Promise<AppRelease> {
  const env = await experimentEnvironment(
    identity,
    // A process on the laboratory reaches its services where the laboratory host does (a docker
    // server by its published port); a container reaches them on its experiment's network.
    (explicit, known) =>
      lab.services.environment(identity.app, identity.name, explicit, {
        known,
        hostReachable: loaded.config.runtime === "local",
      }),
    configured ?? (await revealedEnvironment(lab, loaded)),
  );
  return { identity, appDirectory, config: loaded.config, configFile: loaded.file, env };
}

/** An experiment's URL is given out once it serves the release, through this laboratory's router. */
export function verifyRoute(lab: ExperimentsContext, release: Release): Promise<void> {
  return ensureRoute(lab.home, lab.routerPort, release.host, release.loaded.config.health_check_path);
}
