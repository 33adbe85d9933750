import { access, constants } from "node:fs/promises";
import { join } from "node:path";

/** The laboratory's system directories: the programs labtest runs are the laboratory's, not a developer's. */
export const SYSTEM_DIRECTORIES = [
  "/usr/local/sbin",
  "/usr/local/bin",
  "/usr/sbin",
  "/usr/bin",
  "/sbin",
  "/bin",
] as const;

/**
 * What every program labtest runs on the laboratory starts from — an experiment's app and
 * commands (the experiment's variables over it), its servers and their tools: labtest's alone,
 * the same whoever runs labtest; nothing of their shell (PATH, HOME, LANG, TZ, …) reaches them.
 * No TZ: the time zone is the laboratory machine's own (/etc/localtime), which is the same for
 * everyone — a communal PostgreSQL's initdb would otherwise write its first user's TZ into
 * postgresql.conf for every tenant.
 */
export function baseEnvironment(home: string): Record<string, string> {
  return { PATH: SYSTEM_DIRECTORIES.join(":"), HOME: home, LANG: "C.UTF-8" };
}

/**
 * Where the first of `names` is found as an executable, each looked for in `directories` in
 * order (a name given as an absolute path is taken as it is); undefined when none is.
 */
export async function findProgram(
  names: readonly string[],
  directories: readonly string[],
): Promise<string | undefined> {
  for (const name of names)
    for (const candidate of name.startsWith("/") ? [name] : directories.map((d) => join(d, name)))
      if (await isExecutable(candidate)) return candidate;
  return undefined;
}

async function isExecutable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}
