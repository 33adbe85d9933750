import { envPrefix } from "../config/names.js";
import { expandVariables } from "../config/variables.js";
import { serviceKind } from "./kinds/index.js";
import type { Connection } from "./model.js";

/**
 * The variables an app receives for its services (DESIGN §4): `<NAME>_URL`, `_HOST`, `_PORT`,
 * `_USER`, `_PASSWORD`, `_NAME` where they apply, the kind's extras (a key `_PREFIX`), and the
 * well-known names (DATABASE_URL, REDIS_URL, MEMCACHE_URL) for a kind that is the only one of
 * its family, and the variables its clients read (PGHOST, MYSQL_HOST, …) for the only service
 * that sets them. `explicit` entries of the configuration win over generated ones; `$NAME` in them
 * expands to the generated variables, `known` (e.g. `DB_URL=$DATABASE_URL`) and earlier entries.
 */
export function serviceEnvironment(
  connections: Record<string, Connection>,
  explicit: Record<string, string> = {},
  known: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  const families = new Map<string, Connection[]>();
  for (const [name, connection] of Object.entries(connections)) {
    const module = serviceKind(connection.kind);
    const prefix = envPrefix(name);
    const fields: Record<string, string | number | null> = {
      URL: connection.url,
      HOST: connection.host,
      PORT: connection.port,
      USER: connection.user,
      PASSWORD: connection.password,
      NAME: connection.database,
      ...module.extraEnv?.(connection),
    };
    for (const [field, value] of Object.entries(fields))
      if (value !== null && value !== "") env[`${prefix}_${field}`] = String(value);
    families.set(module.family, [...(families.get(module.family) ?? []), connection]);
  }
  for (const [, members] of families) {
    const [only] = members;
    if (members.length === 1 && only) Object.assign(env, serviceKind(only.kind).wellKnownEnv(only));
  }
  Object.assign(env, clientVariables(Object.values(connections)));
  const variables = { ...known, ...env };
  const expanded: Record<string, string> = {};
  for (const [key, value] of Object.entries(explicit)) {
    expanded[key] = expandVariables(value, variables);
    // Later entries see this one as the app will (`BASE=/srv`, `UPLOADS=$BASE/uploads`), as in a shell.
    variables[key] = expanded[key];
  }
  return { ...env, ...expanded };
}

/**
 * The variables the services' command-line clients read; one that two services would both set
 * (two PostgreSQL databases) is left out: a client given one of them would guess.
 */
function clientVariables(connections: Connection[]): Record<string, string> {
  const all = connections.map((c) => serviceKind(c.kind).clientEnv?.(c) ?? {});
  const setBy = (key: string) => all.filter((variables) => key in variables).length;
  return Object.fromEntries(
    all.flatMap((variables) => Object.entries(variables)).filter(([key]) => setBy(key) === 1),
  );
}
