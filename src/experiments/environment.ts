import { hostLabel } from "../config/names.js";
import { expandPattern } from "../config/patterns.js";
import type { ExperimentConfig } from "../config/resolve.js";
import type { PublicBase } from "../lab/router.js";
import { experimentOrigin } from "./context.js";
import type { ExperimentRow } from "./registry.js";

// The base of the app's environment is the one of every program labtest runs on the laboratory.
export { baseEnvironment } from "../lab/programs.js";

/** What identifies an experiment to its app. */
export interface ExperimentIdentity {
  app: string;
  name: string;
  branch: string;
  release: string;
  host: string;
  /** Where the router serves it: scheme, host and port (no path), for apps that make their own links. */
  url: string;
}

/** The host name the router serves an experiment at: host_name_pattern as one DNS label, in test_domain. */
export function experimentHost(
  config: Pick<ExperimentConfig, "app_name" | "host_name_pattern" | "test_domain">,
  experiment: { name: string; branch: string; release: string },
): string {
  const { name, branch, release } = experiment;
  const label = expandPattern(config.host_name_pattern, {
    app_name: config.app_name,
    experiment: name,
    branch,
    release,
  });
  return `${hostLabel(label)}.${config.test_domain}`;
}

/**
 * Who an experiment is to its app: as recorded, or for one not created yet, what `create -n
 * NAME` would make it (its name as its branch, no release yet).
 */
export function experimentIdentity(
  config: Parameters<typeof experimentHost>[0],
  name: string,
  recorded: ExperimentRow | undefined,
  base: PublicBase,
): ExperimentIdentity {
  const { branch, release } = recorded ?? { branch: name, release: "" };
  const host = recorded?.host ?? experimentHost(config, { name, branch, release });
  return { app: config.app_name, name, branch, release, host, url: experimentOrigin(host, base) };
}

/** The variables that identify an experiment to its app (README, "The app's environment"). */
export function identityVariables(identity: ExperimentIdentity): Record<string, string> {
  return {
    APP_NAME: identity.app,
    EXPERIMENT: identity.name,
    // LabTest's name for it, which its documentation promises apps.
    INSTANCE_NAME: identity.name,
    BRANCH_NAME: identity.branch,
    RELEASE: identity.release,
    VIRTUAL_HOST: identity.host,
    EXPERIMENT_URL: identity.url,
  };
}

/**
 * An experiment's record as its app's environment tells it: what labtest gives every app
 * (APP_NAME, EXPERIMENT, BRANCH_NAME, RELEASE, VIRTUAL_HOST, PORT) identifies it, so a running
 * app can be recorded again when the registry was lost.
 */
export function rowFromEnvironment(
  env: Record<string, string>,
  found: { runtime: ExperimentRow["runtime"]; handle: string; since: string; port?: number },
): ExperimentRow {
  return {
    app: env.APP_NAME ?? "",
    name: env.EXPERIMENT ?? "",
    branch: env.BRANCH_NAME ?? "",
    release: env.RELEASE ?? "",
    runtime: found.runtime,
    status: "running",
    host: env.VIRTUAL_HOST ?? "",
    port: found.port ?? Number(env.PORT ?? 0),
    handle: found.handle,
    checkout: "",
    createdAt: found.since,
    updatedAt: found.since,
  };
}

/**
 * The environment of an experiment's app and commands: APP_NAME, EXPERIMENT (and INSTANCE_NAME),
 * BRANCH_NAME, RELEASE, VIRTUAL_HOST and EXPERIMENT_URL, then the services' variables with the configured `environment` over
 * them, `$NAME` in it expanded from all of those (`$VIRTUAL_HOST`, `$DATABASE_URL`, …). Before
 * the services are up (the build), `services` expands from the experiment's own variables alone.
 */
export function experimentEnvironment(
  identity: ExperimentIdentity,
  services: (
    explicit: Record<string, string>,
    known: Record<string, string>,
  ) => Promise<Record<string, string>>,
  configured: Record<string, string>,
): Promise<Record<string, string>> {
  const own = identityVariables(identity);
  return services(configured, own).then((env) => ({ ...own, ...env }));
}
