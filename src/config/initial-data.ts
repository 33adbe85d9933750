import { readdir, readFile, stat } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { resolvesInside } from "../lab/confine.js";
import { ProvisionError } from "../services/errors.js";
import { serviceKind } from "../services/kinds/index.js";
import type { LoadedConfig } from "./resolve.js";

/**
 * The SQL of `options.initial_data`: a file, or a directory whose newest file is taken (as
 * LabTest did, so a nightly dump dropped into the directory is picked up). Relative paths start
 * at `directory`; with `within` (a branch's checkout), the file must resolve inside it.
 */
export async function readInitialData(
  path: string,
  directory: string,
  service: string,
  within?: string,
): Promise<string> {
  const where = `service ${service}: options.initial_data`;
  const full = isAbsolute(path) ? path : join(directory, path);
  const info = await stat(full).catch(() => undefined);
  if (!info)
    throw new ProvisionError(`initial data ${full} does not exist`, [
      {
        where,
        what: `no file or directory at ${full}`,
        fix: "point it at an SQL dump, relative to the configuration file",
      },
    ]);
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
  if (within && !(await resolvesInside(within, file)))
    throw new ProvisionError(`initial data ${file} is outside the branch's checkout`, [
      {
        where,
        what: "a branch's configuration may load only files of its own checkout (links are followed)",
        fix: "commit the dump to the branch, or load it with labtest services up from your working copy",
      },
    ]);
  return readFile(file, "utf8");
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
