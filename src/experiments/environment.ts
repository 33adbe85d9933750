/** What identifies an experiment to its app. */
export interface ExperimentIdentity {
  app: string;
  name: string;
  branch: string;
  release: string;
  host: string;
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
