// Where a release's code comes from on the laboratory: what the client said (it chooses, see
// laboratory/code.ts), and the laboratory's own bare repository per app, into which clients push
// the commits it cannot fetch from a git host.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { ConfigError } from "../errors.js";
import { MAX_BUNDLE_BYTES } from "../laboratory/protocol-constants.js";
import { checkBranchName, git } from "./checkout.js";
import { ExperimentError } from "./errors.js";

/**
 * Where the client says a release's code comes from: a repository the laboratory clones (a git
 * host's URL), a repository on the laboratory's own machine (the embedded laboratory), or a commit
 * the client pushed into the app's repository on the laboratory first (codePush).
 */
export type CodeSource =
  | { kind: "url"; url: string }
  | { kind: "local"; repository: string }
  | { kind: "pushed"; commit: string };

/** What a release is made of, as the client sent it. */
export interface ReleaseSource {
  /** Where git clones the branch from: a URL, or a path on the laboratory. */
  repository: string;
  /** The commit the client pushed; none: the branch's newest. */
  commit?: string;
  /** The contents of the client's initial_data files by service, for a branch without a configuration of its own. */
  initialData: Record<string, string>;
}

/** The app's bare repository on the laboratory, which pushed bundles are fetched into. */
export function codeRepository(home: string, app: string): string {
  return join(home, "code", `${app}.git`);
}

/**
 * The app's bare repository on the laboratory, made (empty) when it has none yet; its path. Two
 * clients' first pushes may both find none: each makes one aside and renames it into place, which
 * only one rename wins, and the other's is dropped (two `git init` in one place fight over its lock).
 */
export async function ensureCodeRepository(home: string, app: string): Promise<string> {
  const repository = codeRepository(home, app);
  if (existsSync(repository)) return repository;
  await mkdir(join(home, "code"), { recursive: true, mode: 0o700 });
  const aside = await mkdtemp(join(home, "code", "new-"));
  try {
    await git(["init", "--quiet", "--bare", aside]);
    await rename(aside, repository).catch((error: NodeJS.ErrnoException) => {
      if (!(error.code === "ENOTEMPTY" || error.code === "EEXIST")) throw error;
    });
  } finally {
    await rm(aside, { recursive: true, force: true });
  }
  return repository;
}

/**
 * Writes the app repository's git hooks (hook name → shell script), replacing what is there: the
 * scripts name the labtest that installed them, which an upgrade or a move changes.
 */
export async function installHooks(repository: string, hooks: Record<string, string>): Promise<void> {
  await mkdir(join(repository, "hooks"), { recursive: true });
  for (const [name, script] of Object.entries(hooks)) {
    // Renamed into place whole: a push arriving meanwhile runs the old hook or the new one.
    await writeFileAtomic(join(repository, "hooks", name), script, { mode: 0o755 });
  }
}

/** The branch heads (branch → commit) of the app's repository on the laboratory; none before a first push. */
export async function storedHeads(home: string, app: string): Promise<Record<string, string>> {
  const repository = codeRepository(home, app);
  if (!existsSync(repository)) return {};
  const { stdout } = await git([
    "-C",
    repository,
    "for-each-ref",
    "--format=%(objectname) %(refname:lstrip=2)",
    "refs/heads/",
  ]);
  const heads: Record<string, string> = {};
  for (const line of stdout.split("\n").filter(Boolean)) {
    const [commit = "", ...branch] = line.split(" ");
    heads[branch.join(" ")] = commit;
  }
  return heads;
}

/**
 * Takes a bundle a client made of its branches (git bundle create): checked whole against the
 * app's repository (`git bundle verify`: the commits it builds on must be there), then fetched
 * into it, its branches replacing those of the same name. Returns the repository's heads.
 */
export async function receiveBundle(
  home: string,
  app: string,
  bundle: Buffer,
): Promise<Record<string, string>> {
  if (bundle.length > MAX_BUNDLE_BYTES) throw bundleTooLarge(bundle.length);
  const repository = await ensureCodeRepository(home, app);
  const incoming = await mkdtemp(join(home, "code", "incoming-"));
  try {
    const file = join(incoming, "pushed.bundle");
    await writeFile(file, bundle, { mode: 0o600 });
    const verified = await git(["-C", repository, "bundle", "verify", "--quiet", file], { reject: false });
    if (verified.exitCode !== 0)
      throw new ExperimentError(`the laboratory cannot take the code pushed for ${app}`, [
        {
          where: `the bundle for ${app}`,
          what: verified.stderr.trim().split("\n").slice(-3).join("\n") || "git bundle verify refused it",
          fix: "run the command again: labtest asks the laboratory anew what it has",
        },
      ]);
    await git(["-C", repository, "fetch", "--quiet", "--", file, "+refs/heads/*:refs/heads/*"]);
  } finally {
    await rm(incoming, { recursive: true, force: true });
  }
  return storedHeads(home, app);
}

/** A bundle above MAX_BUNDLE_BYTES: the client's error, with what to do instead. */
export function bundleTooLarge(bytes: number): ExperimentError {
  const mb = (n: number) => `${Math.ceil(n / (1024 * 1024))} MB`;
  return new ExperimentError(
    `the code to push is ${mb(bytes)}, more than the ${mb(MAX_BUNDLE_BYTES)} a laboratory takes`,
    [
      {
        where: "code_repo_url",
        what: "the branch's history is pushed to the laboratory, which cannot fetch it itself",
        fix: "push the branch to a git host the laboratory reaches and set code_repo_url to it",
      },
    ],
    { exitCode: 2 },
  );
}

/**
 * The repository and commit to check `branch` out from, for what the client said; without a
 * source (a client that did not say), the configuration's code_repo_url.
 */
export async function releaseSource(
  home: string,
  app: string,
  branch: string,
  code: CodeSource | undefined,
  configured: string | null,
  initialData: Record<string, string>,
): Promise<ReleaseSource> {
  if (code?.kind === "pushed")
    return {
      repository: await pushedBranch(home, app, branch, code.commit),
      commit: code.commit,
      initialData,
    };
  if (code?.kind === "local") return { repository: code.repository, initialData };
  if (code?.kind === "url") return { repository: code.url, initialData };
  if (configured === null)
    throw new ConfigError(`no repository to check ${branch} out from`, [
      {
        where: "labtest.code_repo_url",
        what: "not set, and the configuration is not inside a git repository to derive it from",
        fix: "set code_repo_url to the repository to check out",
      },
    ]);
  return { repository: configured, initialData };
}

/** Points the app repository's `branch` at a pushed `commit` (which must be there) and names the repository. */
async function pushedBranch(home: string, app: string, branch: string, commit: string): Promise<string> {
  await checkBranchName(branch);
  const repository = codeRepository(home, app);
  const found =
    existsSync(repository) &&
    (await git(["-C", repository, "cat-file", "-e", `${commit}^{commit}`], { reject: false })).exitCode === 0;
  if (!found)
    throw new ExperimentError(`commit ${commit.slice(0, 12)} of ${branch} was not pushed to the laboratory`, [
      {
        where: "BRANCH",
        what: `the laboratory's repository of ${app} lacks it`,
        fix: "run the command again with --push",
      },
    ]);
  await git(["-C", repository, "update-ref", `refs/heads/${branch}`, commit]);
  return repository;
}
