import { rm } from "node:fs/promises";
import { execa, type Options } from "execa";
import { gitToplevel } from "../config/git.js";
import { REPOSITORY_SCHEMES } from "../config/repository.js";
import type { LoadedConfig } from "../config/resolve.js";
import { ConfigError } from "../errors.js";
import { ExperimentError } from "./errors.js";

/**
 * Git with only the transports that fetch. GIT_ALLOW_PROTOCOL overrides every `protocol.*.allow`
 * of the account's git configuration, so no repository URL reaches `ext::` or another helper
 * even where configuration validation was bypassed. A local path is the `file` transport.
 */
function git(args: string[], options: Pick<Options, "reject"> = {}) {
  return execa("git", args, { ...options, env: { GIT_ALLOW_PROTOCOL: REPOSITORY_SCHEMES.join(":") } });
}

/**
 * Where the laboratory fetches `branch` from. On the embedded laboratory, when code_repo_url is
 * only the default (origin), the local repository itself when it has the branch: a branch not
 * pushed yet, or pushed behind, is published as it is here. A URL set on purpose is the source.
 */
export async function branchSource(loaded: LoadedConfig, branch: string): Promise<string> {
  const { config, sources } = loaded;
  if (config.laboratory.kind === "local" && sources.code_repo_url.from === "default") {
    const local = await gitToplevel(loaded.directory);
    const found =
      local &&
      (await git(["-C", local, "rev-parse", "--verify", "--quiet", `refs/heads/${branch}`], {
        reject: false,
      }));
    if (local && found && found.exitCode === 0) return local;
  }
  if (config.code_repo_url === null)
    throw new ConfigError(`no repository to check ${branch} out from`, [
      {
        where: "labtest.code_repo_url",
        what: `not set, and ${loaded.directory} is not inside a git repository to derive it from`,
        fix: "set code_repo_url to the repository to check out",
      },
    ]);
  return config.code_repo_url;
}

/** Whether `branch` is a valid branch name that exists in `repository` (a path or URL). */
export async function checkBranch(repository: string, branch: string): Promise<void> {
  const valid = await git(["check-ref-format", "--branch", branch], { reject: false });
  if (valid.exitCode !== 0)
    throw new ExperimentError(`"${branch}" is not a valid branch name`, [
      {
        where: "BRANCH",
        what: valid.stderr.trim() || "git refuses the name",
        fix: "name an existing branch",
      },
    ]);
  const found = await git(["ls-remote", "--exit-code", "--heads", "--", repository, `refs/heads/${branch}`], {
    reject: false,
  });
  if (found.exitCode === 2)
    throw new ExperimentError(`branch ${branch} does not exist in ${repository}`, [
      {
        where: "BRANCH",
        what: `git ls-remote found no refs/heads/${branch}`,
        fix: "push the branch first, or name another",
      },
    ]);
  if (found.exitCode !== 0)
    throw new ExperimentError(`cannot read ${repository}`, [
      {
        where: "code_repo_url",
        what: found.stderr.trim().split("\n").slice(-3).join("\n"),
        fix: "check code_repo_url and your access to it",
      },
    ]);
}

/**
 * Clones `branch` of `repository` into `directory` (replacing a partial one); returns the commit
 * and its subject, read now: once the checkout is handed to the app's account, git is not run in it.
 */
export async function checkout(
  repository: string,
  branch: string,
  directory: string,
): Promise<{ commit: string; subject: string }> {
  await rm(directory, { recursive: true, force: true });
  // --no-local: a clone of a path hard-links the repository's objects, and handing the checkout
  // to the app's account would hand it those files of the repository too.
  await git([
    "clone",
    "--quiet",
    "--no-local",
    "--single-branch",
    `--branch=${branch}`,
    "--",
    repository,
    directory,
  ]);
  const [commit = "", subject = ""] = (
    await git(["-C", directory, "log", "-1", "--format=%H%n%s"])
  ).stdout.split("\n");
  return { commit, subject };
}
