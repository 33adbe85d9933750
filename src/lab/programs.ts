import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";

/** The directories of PATH, in order. */
export function pathDirectories(): string[] {
  return (process.env.PATH ?? "").split(delimiter).filter(Boolean);
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
