import { access } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { ConfigError } from "../errors.js";
import {
  type ConfigDocument,
  type ConfigFormat,
  formatOf,
  readConfigDocument,
  SECTION,
  SUPPORTED_EXTENSIONS,
} from "./formats.js";

/** No configuration where discovery looked: the command runs outside an app. */
export class ConfigNotFoundError extends ConfigError {}

/** The files searched in each directory, in order of preference (as LabTest did). */
export const CANDIDATE_FILES: ReadonlyArray<readonly [string, ConfigFormat]> = [
  [".labtest.yml", "yaml"],
  [".labtest.yaml", "yaml"],
  ["setup.cfg", "ini"],
  ["package.json", "json"],
];

/**
 * Finds the configuration: the file named explicitly, or else the first candidate file that
 * has a labtest section, walking up from `cwd` to the filesystem root.
 */
export async function findConfig(cwd: string, explicitPath?: string): Promise<ConfigDocument> {
  if (explicitPath !== undefined) return readExplicit(resolve(cwd, explicitPath));
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    for (const [name, format] of CANDIDATE_FILES) {
      const file = join(dir, name);
      if (!(await exists(file))) continue;
      const doc = await readConfigDocument(file, format);
      if (doc.section !== undefined) return doc;
    }
    if (dirname(dir) === dir) break;
  }
  throw new ConfigNotFoundError(
    `no labtest configuration found in ${resolve(cwd)} or any directory above it`,
    [
      {
        where: resolve(cwd),
        what: `none of ${CANDIDATE_FILES.map(([n]) => n).join(", ")} has a "${SECTION}" section`,
        fix: `create .labtest.yml containing "${SECTION}:" and your options, or pass --config PATH`,
      },
    ],
  );
}

async function readExplicit(file: string): Promise<ConfigDocument> {
  const format = formatOf(file);
  if (format === undefined) {
    throw new ConfigError(`cannot read configuration file ${file}`, [
      {
        where: file,
        what: "labtest does not know this file's format from its extension",
        fix: `use a file ending in ${SUPPORTED_EXTENSIONS.join(", ")}`,
      },
    ]);
  }
  if (!(await exists(file))) {
    throw new ConfigError(`configuration file ${file} does not exist`, [
      { where: "--config", what: `no file at ${file}`, fix: "check the path passed to --config" },
    ]);
  }
  const doc = await readConfigDocument(file, format);
  if (doc.section === undefined) {
    throw new ConfigError(`configuration file ${file} has no "${SECTION}" section`, [
      {
        where: file,
        what: `labtest reads its options from a "${SECTION}" section`,
        fix: format === "ini" ? `add a [${SECTION}] section` : `put the options under a "${SECTION}" key`,
      },
    ]);
  }
  return doc;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
