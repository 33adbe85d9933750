import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { ExperimentError } from "./errors.js";

/**
 * Why `program` did not start at all (`code`, the spawn error's), as a shell would say it and
 * with a shell's exit code: 127 when no such program is found in `cwd` or on `path`, 126 when
 * one is found but may not run; undefined for other failures. The system reports EACCES for a
 * program it found nowhere when a directory of PATH was closed to the account: hence the search.
 */
export async function unstarted(
  program: string,
  code: string | undefined,
  path: string | undefined,
  cwd: string,
): Promise<ExperimentError | undefined> {
  if (code !== "ENOENT" && code !== "EACCES") return undefined;
  const candidates = program.includes("/")
    ? [resolve(cwd, program)]
    : (path ?? "")
        .split(":")
        .filter(Boolean)
        .map((directory) => resolve(cwd, directory, program));
  const found = await Promise.all(
    candidates.map((file) =>
      stat(file).then(
        (s) => s.isFile(),
        () => false,
      ),
    ),
  );
  const where = `the command ${program}`;
  return found.includes(true)
    ? new ExperimentError(
        `${program}: permission denied`,
        [
          {
            where,
            what: "it exists but may not be run by the app's account",
            fix: "make it executable (chmod +x)",
          },
        ],
        { exitCode: 126 },
      )
    : new ExperimentError(
        `${program}: command not found`,
        [
          {
            where,
            what: "no such program in the app's directory or on its PATH",
            fix: "check the command's name",
          },
        ],
        { exitCode: 127 },
      );
}
