import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { resolvesInside } from "../lab/confine.js";
import { ProvisionError } from "../services/errors.js";
import { serviceKind } from "../services/kinds/index.js";
import { initialDataDirectories, type StateStore } from "../state/index.js";
import type { LoadedConfig } from "./resolve.js";

/**
 * What a branch's configuration may read on the laboratory: files of its checkout, and files in
 * the directories the laboratory's state allows its app (LabTest's nightly dumps).
 */
export interface BranchFiles {
  checkout: string;
  app: string;
  state: StateStore;
}

/**
 * The SQL of `options.initial_data`: a file, or a directory whose newest file is taken (as
 * LabTest did, so a nightly dump dropped into the directory is picked up). Relative paths start
 * at `directory`; for a branch's configuration (`branch`), a relative path must resolve inside
 * its checkout and an absolute one inside a directory the administrator allows.
 */
export async function readInitialData(
  path: string,
  directory: string,
  service: string,
  branch?: BranchFiles,
): Promise<string> {
  const where = `service ${service}: options.initial_data`;
  const full = isAbsolute(path) ? resolve(path) : join(directory, path);
  const confine = branch && (await branchConfinement(branch, path, full, where));
  const info = await stat(full).catch(() => undefined);
  if (!info)
    throw new ProvisionError(`initial data ${full} does not exist`, [
      {
        where,
        what: `no file or directory at ${full}`,
        fix: "point it at an SQL dump, relative to the configuration file",
      },
    ]);
  await confine?.(full);
  let file = full;
  if (info.isDirectory()) {
    const files = await Promise.all(
      (await readdir(full)).map(async (name) => ({ name, info: await stat(join(full, name)) })),
    );
    const newest = files.filter((f) => f.info.isFile()).sort((a, b) => b.info.mtimeMs - a.info.mtimeMs)[0];
    if (!newest)
      throw new ProvisionError(`initial data directory ${full} is empty`, [
        { where, what: "no file to load", fix: "put an SQL dump in it" },
      ]);
    file = join(full, newest.name);
  }
  await confine?.(file);
  return readFile(file, "utf8");
}

/**
 * Where a branch's initial data may be: its checkout for a relative path, the allowed
 * directories for an absolute one. The path is checked as written before anything is looked at
 * (so a branch learns nothing of other files, not even whether they exist); the returned check
 * is for what is read, links resolved.
 */
async function branchConfinement(
  branch: BranchFiles,
  path: string,
  full: string,
  where: string,
): Promise<(file: string) => Promise<void>> {
  if (!isAbsolute(path))
    return confinement(
      [branch.checkout],
      full,
      (file) =>
        new ProvisionError(`initial data ${file} is outside the branch's checkout`, [
          {
            where,
            what: "a branch's configuration may load only files of its own checkout (links are followed)",
            fix: "commit the dump to the branch, or load it with labtest services up from your working copy",
          },
        ]),
    );
  const { key, directories } = await initialDataDirectories(branch.state, branch.app);
  const holding = path.endsWith("/") ? full : dirname(full);
  return confinement(
    directories,
    full,
    (file) =>
      new ProvisionError(`initial data ${file} is not in a directory the laboratory allows`, [
        {
          where,
          what: `an absolute path is read on the laboratory, only inside the directories its state lists at ${key} (now: ${directories.join(", ") || "none"}; links are followed)`,
          fix: `the laboratory's administrator allows the directory: labtest state set ${key} '["${holding}"]' (or at ${dirname(key)}/default for every app); or commit the dump to the branch and name it relative to .labtest.yml`,
        },
      ]),
  );
}

/** Refuses `full` unless it is written inside one of `roots`; returns the check of a file read, links resolved. */
async function confinement(
  roots: string[],
  full: string,
  refuse: (file: string) => ProvisionError,
): Promise<(file: string) => Promise<void>> {
  if (!roots.some((root) => writtenInside(root, full))) throw refuse(full);
  return async (file) => {
    for (const root of roots) if (await resolvesInside(root, file)) return;
    throw refuse(file);
  };
}

/** Whether `path` is `root` or below it as written (`..` resolved, links not). */
function writtenInside(root: string, path: string): boolean {
  const rest = relative(resolve(root), path);
  return rest !== ".." && !rest.startsWith(`..${sep}`) && !isAbsolute(rest);
}

/**
 * The initial data of a configuration's services (all, or `names`), read from the working copy
 * it was loaded from, by service name: what `services up` sends, so that the laboratory never
 * reads the client's files. Only services that load data have any (the laboratory refuses
 * initial_data on the others); a name the configuration lacks is the laboratory's to report.
 */
export async function initialDataOf(loaded: LoadedConfig, names?: string[]): Promise<Record<string, string>> {
  const services = Object.entries(loaded.config.services).filter(
    ([name, config]) =>
      (!names?.length || names.includes(name)) &&
      config.provision_type !== "shared" &&
      config.options.initial_data !== undefined &&
      serviceKind(config.service).dump !== undefined,
  );
  const entries = await Promise.all(
    services.map(async ([name, config]) => [
      name,
      await readInitialData(config.options.initial_data as string, loaded.directory, name),
    ]),
  );
  return Object.fromEntries(entries);
}
