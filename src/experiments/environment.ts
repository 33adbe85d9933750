import type { ExperimentRow } from "./registry.js";

/** What identifies an experiment to its app. */
export interface ExperimentIdentity {
  app: string;
  name: string;
  branch: string;
  release: string;
  host: string;
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

/** Variables of the laboratory host a local app needs to run at all (finding programs, a home). */
const INHERITED = ["PATH", "HOME", "LANG", "TZ"];

export function hostBasics(): Record<string, string> {
  return Object.fromEntries(INHERITED.flatMap((key) => (process.env[key] ? [[key, process.env[key]]] : [])));
}

/** `text` with `$NAME` and `${NAME}` replaced from `variables`; other `$` text is kept. */
export function expandVariables(text: string, variables: Record<string, string>): string {
  return text.replace(
    /\$(?:\{(\w+)\}|([A-Za-z_]\w*))/g,
    (whole, braced: string | undefined, bare: string | undefined) => variables[braced ?? bare ?? ""] ?? whole,
  );
}

/**
 * The environment of an experiment's app and commands: APP_NAME, EXPERIMENT, BRANCH_NAME,
 * RELEASE and VIRTUAL_HOST, then the services' variables with the
 * configured `environment` over them (`$VIRTUAL_HOST`, `$EXPERIMENT`, … expanded in it).
 */
export function experimentEnvironment(
  identity: ExperimentIdentity,
  services: (explicit: Record<string, string>) => Promise<Record<string, string>>,
  configured: Record<string, string>,
): Promise<Record<string, string>> {
  const own: Record<string, string> = {
    APP_NAME: identity.app,
    EXPERIMENT: identity.name,
    BRANCH_NAME: identity.branch,
    RELEASE: identity.release,
    VIRTUAL_HOST: identity.host,
  };
  const expanded = Object.fromEntries(
    Object.entries(configured).map(([key, value]) => [key, expandVariables(value, own)]),
  );
  return services(expanded).then((env) => ({ ...own, ...env }));
}
