// The client's side of getting a branch's code to the laboratory: where the laboratory should take
// it from, and — when it cannot fetch it itself — the commits it lacks, sent as a git bundle.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gitToplevel } from "../config/git.js";
import { initialDataOf } from "../config/initial-data.js";
import type { LoadedConfig } from "../config/resolve.js";
import { UsageError } from "../errors.js";
import { git, gitTimeoutSeconds } from "../experiments/checkout.js";
import { bundleTooLarge, type CodeSource } from "../experiments/code-store.js";
import type { Laboratory } from "./laboratory.js";
import { MAX_BUNDLE_BYTES, PROTOCOL_VERSION as v } from "./protocol-constants.js";

/**
 * What a create or update sends besides its project: where the laboratory takes the branch's
 * code from (see codeSource), and the contents of the configuration's initial_data files, for a
 * branch without a configuration of its own. A file that cannot be read here is left out: the
 * laboratory says so if it needs it (the branch's own configuration may name another).
 */
export async function releaseDelivery(
  lab: Laboratory,
  loaded: LoadedConfig,
  branch: string,
  options: CodeOptions,
): Promise<{ code?: CodeSource; initialData: Record<string, string> }> {
  const code = await codeSource(lab, loaded, branch, options);
  const readable = await Promise.all(
    Object.keys(loaded.config.services).map((service) =>
      initialDataOf(loaded, [service]).catch((): Record<string, string> => ({})),
    ),
  );
  return { ...(code ? { code } : {}), initialData: Object.assign({}, ...readable) };
}

/** Where the command runs against: this machine's laboratory, and whether the user asked to push. */
export interface CodeOptions {
  embedded: boolean;
  push?: boolean;
  progress?: (text: string) => void;
}

/**
 * Where the laboratory takes `branch` from, pushing the commits it lacks first when it must:
 * - the embedded laboratory with code_repo_url only defaulted and the branch in the local
 *   repository: that repository (a branch not pushed anywhere works);
 * - `--push`, or a remote laboratory that cannot fetch the commit the client has (the repository
 *   is a path on this machine, or the branch is not at that commit there): pushed;
 * - otherwise code_repo_url, which the laboratory clones. Undefined: no code_repo_url at all
 *   (the laboratory says so).
 */
export async function codeSource(
  lab: Laboratory,
  loaded: LoadedConfig,
  branch: string,
  options: CodeOptions,
): Promise<CodeSource | undefined> {
  const { config, sources } = loaded;
  const url = config.code_repo_url;
  const local = await localBranch(loaded, branch);
  const configured: CodeSource | undefined = url === null ? undefined : { kind: "url", url };
  if (options.push) {
    if (!local)
      throw new UsageError(`branch ${branch} is not in the local repository to push`, [
        {
          where: "--push",
          what: `no refs/heads/${branch} in the repository of ${loaded.directory}`,
          fix: "name a branch of your repository, or leave --push out",
        },
      ]);
    return pushBranch(lab, config.app_name, local, options.progress);
  }
  if (options.embedded)
    return local && sources.code_repo_url.from === "default"
      ? { kind: "local", repository: local.repository }
      : configured;
  if (local && (url === null || isLocalRepository(url) || (await remoteHead(url, branch)) !== local.commit))
    return pushBranch(lab, config.app_name, local, options.progress);
  return configured;
}

/**
 * Whether `url` is a repository on the machine that reads it: a path or a file:// URL, rather
 * than a host's (scheme://… or git's user@host:path, whose colon comes before any slash).
 */
export function isLocalRepository(url: string): boolean {
  if (url.startsWith("file://")) return true;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url)) return false;
  const colon = url.indexOf(":");
  const slash = url.indexOf("/");
  return !(colon > 0 && (slash === -1 || colon < slash));
}

/** A branch of the client's repository, and the commit it is at. */
interface LocalBranch {
  repository: string;
  branch: string;
  commit: string;
}

async function localBranch(loaded: LoadedConfig, branch: string): Promise<LocalBranch | undefined> {
  const repository = await gitToplevel(loaded.directory);
  if (!repository) return undefined;
  const found = await git(
    ["-C", repository, "rev-parse", "--verify", "--quiet", `refs/heads/${branch}^{commit}`],
    {
      reject: false,
    },
  );
  return found.exitCode === 0 ? { repository, branch, commit: found.stdout.trim() } : undefined;
}

/** The commit `branch` is at in the repository at `url`, as this machine sees it; undefined when it cannot tell. */
async function remoteHead(url: string, branch: string): Promise<string | undefined> {
  const seconds = gitTimeoutSeconds();
  const found = await git(["ls-remote", "--heads", "--", url, `refs/heads/${branch}`], {
    reject: false,
    timeout: seconds * 1000,
  });
  return found.exitCode === 0 ? found.stdout.split(/\s/)[0] || undefined : undefined;
}

/** A laboratory that takes commits by git push (over SSH) rather than as a bundle in a request. */
interface GitPushing {
  pushCommits(app: string, local: LocalBranch): Promise<void>;
}

function pushesWithGit(lab: Laboratory): lab is Laboratory & GitPushing {
  return typeof (lab as Partial<GitPushing>).pushCommits === "function";
}

/**
 * Sends the laboratory the commits of `local` it lacks: by git push where it takes them so (see
 * GitPushing), else as a bundle of the branch without what its repository of the app already has
 * (the heads it names that exist here too). Nothing travels when it has them all.
 */
async function pushBranch(
  lab: Laboratory,
  app: string,
  local: LocalBranch,
  progress: (text: string) => void = () => undefined,
): Promise<CodeSource> {
  const { repository, branch, commit } = local;
  if (pushesWithGit(lab)) {
    progress(`pushing ${branch} to the laboratory (git push)`);
    await lab.pushCommits(app, local);
    return { kind: "pushed", commit };
  }
  const { heads } = await lab.codeHave({ v, app });
  const known: string[] = [];
  for (const head of new Set(Object.values(heads)))
    if (
      (await git(["-C", repository, "cat-file", "-e", `${head}^{commit}`], { reject: false })).exitCode === 0
    )
      known.push(head);
  const excluded = known.map((head) => `^${head}`);
  const missing = Number(
    (await git(["-C", repository, "rev-list", "--count", commit, ...excluded, "--"])).stdout.trim(),
  );
  if (missing > 0) {
    const directory = await mkdtemp(join(tmpdir(), "labtest-push-"));
    try {
      const file = join(directory, "push.bundle");
      await git(["-C", repository, "bundle", "create", "--quiet", file, `refs/heads/${branch}`, ...excluded]);
      const { size } = await stat(file);
      if (size > MAX_BUNDLE_BYTES) throw bundleTooLarge(size);
      progress(
        `pushing ${missing} commit${missing === 1 ? "" : "s"} of ${branch} (${kilobytes(size)}) to the laboratory`,
      );
      await lab.codePush({ v, app, bundle: (await readFile(file)).toString("base64") });
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }
  return { kind: "pushed", commit };
}

function kilobytes(bytes: number): string {
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}
