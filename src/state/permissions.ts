import { chmod, lstat, readdir } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";

/**
 * Keeps the state away from apps, which run as accounts of their own when the laboratory runs as
 * root: state holds administrators' URLs with their passwords. The files and directories of
 * `paths` inside `home` lose every group and other permission (whatever made them: an editor, a
 * copy, an older labtest). Those outside it may be shared with other tools (LabTest's
 * /testing/state.json) and are left as they are; the returned warnings name those every account
 * can read.
 */
export async function protectState(paths: readonly string[], home: string): Promise<string[]> {
  const warnings: string[] = [];
  for (const path of new Set(paths.map((p) => resolve(p)))) {
    const found = await entriesUnder(path);
    if (isInside(path, home)) {
      for (const { file, mode } of found) if (mode & 0o077) await chmod(file, mode & 0o700);
      continue;
    }
    const readable = found.filter(({ mode, isDirectory }) => !isDirectory && mode & 0o004);
    if (readable.length === 1 && readable[0]?.file === path)
      warnings.push(
        `${path} is readable by every account (${octal(readable[0].mode)}), the apps' included: ` +
          `chmod o-rwx ${path} (labtest leaves state outside ${home} as it is)`,
      );
    else if (readable.length > 0)
      warnings.push(
        `${path} holds ${readable.length} file(s) every account can read, the apps' included ` +
          `(${readable[0]?.file}, ${octal(readable[0]?.mode ?? 0)}): chmod -R o-rwx ${path} ` +
          `(labtest leaves state outside ${home} as it is)`,
      );
  }
  return warnings;
}

interface Entry {
  file: string;
  mode: number;
  isDirectory: boolean;
}

/** `path` and, for a directory, everything below it; symbolic links are neither followed nor listed. */
async function entriesUnder(path: string): Promise<Entry[]> {
  const info = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (!info || info.isSymbolicLink()) return [];
  const entry = { file: path, mode: info.mode & 0o777, isDirectory: info.isDirectory() };
  if (!entry.isDirectory) return [entry];
  const below = await Promise.all((await readdir(path)).map((name) => entriesUnder(join(path, name))));
  return [entry, ...below.flat()];
}

function isInside(path: string, directory: string): boolean {
  const rest = relative(resolve(directory), path);
  return !(rest === ".." || rest.startsWith(`..${sep}`) || isAbsolute(rest));
}

const octal = (mode: number) => `0${mode.toString(8).padStart(3, "0")}`;
