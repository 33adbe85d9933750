import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { Writable } from "node:stream";
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
  return found.includes(true) ? permissionDenied(program) : commandNotFound(program);
}

/**
 * A container's stdout that catches the one line the engine writes when the command could not
 * start at all (runc's "OCI runtime exec failed: … exec: "X": executable file not found in
 * $PATH"): `unstarted` is then why, in a shell's words and with its exit code, instead of that line.
 */
export function containerExecOutput(stdout: NodeJS.WritableStream): {
  stdout: NodeJS.WritableStream;
  unstarted: () => ExperimentError | undefined;
} {
  let first = true;
  let failure: ExperimentError | undefined;
  const watched = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const why = first ? OCI_UNSTARTED.exec(chunk.toString("utf8")) : null;
      first = false;
      if (why?.[1] !== undefined)
        failure = why[2] === "permission denied" ? permissionDenied(why[1]) : commandNotFound(why[1]);
      else stdout.write(chunk);
      done();
    },
  });
  return { stdout: watched, unstarted: () => failure };
}

const OCI_UNSTARTED =
  /^OCI runtime exec failed: exec failed: unable to start container process: exec: "(.*)": (executable file not found in \$PATH|no such file or directory|permission denied)/;

function commandNotFound(program: string): ExperimentError {
  return new ExperimentError(
    `${program}: command not found`,
    [
      {
        where: `the command ${program}`,
        what: "no such program in the app's directory or on its PATH",
        fix: "check the command's name",
      },
    ],
    { exitCode: 127 },
  );
}

function permissionDenied(program: string): ExperimentError {
  return new ExperimentError(
    `${program}: permission denied`,
    [
      {
        where: `the command ${program}`,
        what: "it exists but may not be run by the app's account",
        fix: "make it executable (chmod +x)",
      },
    ],
    { exitCode: 126 },
  );
}
