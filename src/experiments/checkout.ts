import { rm } from "node:fs/promises";
import { execa, type Options } from "execa";
import { REPOSITORY_SCHEMES } from "../config/repository.js";
import { ExperimentError } from "./errors.js";

/**
 * Git with only the transports that fetch. GIT_ALLOW_PROTOCOL overrides every `protocol.*.allow`
 * of the account's git configuration, so no repository URL reaches `ext::` or another helper
 * even where configuration validation was bypassed. A local path is the `file` transport.
 */
export function git(args: string[], options: Pick<Options, "reject" | "timeout"> = {}) {
  return execa("git", args, { ...options, env: { GIT_ALLOW_PROTOCOL: REPOSITORY_SCHEMES.join(":") } });
}

/** Seconds git may wait on a repository's server: LABTEST_GIT_TIMEOUT, else a minute. */
export function gitTimeoutSeconds(): number {
  const seconds = Number(process.env.LABTEST_GIT_TIMEOUT);
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 60;
}

/**
 * Git settings that give up on an HTTP server that sends nothing for `seconds`: a clone may take
 * long, but not stall. (Over SSH, the account's ssh configuration decides.)
 */
function stallLimits(seconds: number): string[] {
  return ["-c", "http.lowSpeedLimit=1", "-c", `http.lowSpeedTime=${seconds}`];
}

/** A repository git cannot read: a user error (exit 2, as for a wrong setting) naming it. */
function unreadable(repository: string, what: string, cause?: unknown): ExperimentError {
  return new ExperimentError(
    `cannot read ${repository}`,
    [{ where: "code_repo_url", what, fix: "check code_repo_url and your access to it" }],
    { cause, exitCode: 2 },
  );
}

/** The last lines of what git said, where it says why it failed. */
function gitReason(stderr: string): string {
  return stderr.trim().split("\n").slice(-3).join("\n");
}

/** Whether `branch` is a name git takes for a branch. */
export async function checkBranchName(branch: string): Promise<void> {
  const valid = await git(["check-ref-format", "--branch", branch], { reject: false });
  if (valid.exitCode !== 0)
    throw new ExperimentError(`"${branch}" is not a valid branch name`, [
      {
        where: "BRANCH",
        what: valid.stderr.trim() || "git refuses the name",
        fix: "name an existing branch",
      },
    ]);
}

/** Whether `branch` is a valid branch name that exists in `repository` (a path or URL). */
export async function checkBranch(repository: string, branch: string): Promise<void> {
  await checkBranchName(branch);
  const seconds = gitTimeoutSeconds();
  const found = await git(
    [
      ...stallLimits(seconds),
      "ls-remote",
      "--exit-code",
      "--heads",
      "--",
      repository,
      `refs/heads/${branch}`,
    ],
    { reject: false, timeout: seconds * 1000 },
  );
  if (found.timedOut)
    throw unreadable(
      repository,
      `no answer within ${seconds} s (LABTEST_GIT_TIMEOUT sets how long git waits)`,
    );
  if (found.exitCode === 2)
    throw new ExperimentError(`branch ${branch} does not exist in ${repository}`, [
      {
        where: "BRANCH",
        what: `git ls-remote found no refs/heads/${branch}`,
        fix: "push the branch first, or name another",
      },
    ]);
  if (found.exitCode !== 0) throw unreadable(repository, gitReason(found.stderr));
}

/**
 * Clones `branch` of `repository` into `directory` (replacing a partial one), at `commit` when one
 * is asked for; returns the commit and its subject, read now: once the checkout is handed to the
 * app's account, git is not run in it.
 */
export async function checkout(
  repository: string,
  branch: string,
  directory: string,
  commit?: string,
): Promise<{ commit: string; subject: string }> {
  await rm(directory, { recursive: true, force: true });
  // --no-local: a clone of a path hard-links the repository's objects, and handing the checkout
  // to the app's account would hand it those files of the repository too.
  const cloned = await git(
    [
      ...stallLimits(gitTimeoutSeconds()),
      "clone",
      "--quiet",
      "--no-local",
      "--single-branch",
      `--branch=${branch}`,
      "--",
      repository,
      directory,
    ],
    { reject: false },
  );
  if (cloned.failed) {
    // A full disk is the machine's fault, not the repository's: the CLI reports it as such.
    if (cloned.stderr.includes("No space left on device")) throw cloned;
    throw unreadable(repository, gitReason(cloned.stderr), cloned);
  }
  const [head = "", subject = ""] = (
    await git(["-C", directory, "log", "-1", "--format=%H%n%s"])
  ).stdout.split("\n");
  // Another push of the same branch may have moved it between the request and the clone.
  if (commit !== undefined && head !== commit)
    throw new ExperimentError(`branch ${branch} moved on the laboratory while it was checked out`, [
      {
        where: "BRANCH",
        what: `asked for commit ${commit.slice(0, 12)}, the laboratory's branch is at ${head.slice(0, 12)}`,
        fix: "run the command again",
      },
    ]);
  return { commit: head, subject };
}
