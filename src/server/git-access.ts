// An SSH key's git access to the laboratory: the forced command (`labtest serve --stdio`) hands the
// SSH_ORIGINAL_COMMANDs git sends — `git-upload-pack '<app>.git'` (a fetch, read scope) and
// `git-receive-pack '<app>.git'` (a push, deploy scope) — to serveGitCommand, which runs git on the
// app's bare repository <home>/code/<app>.git and nothing else.
//
// What a push means, by the ref it updates (push-hook.ts carries it out, in the repository's hooks):
// - refs/heads/<branch>: `git push labtest <branch>` publishes: it creates the experiment of that
//   branch, or updates it; deleting the ref (`git push labtest :<branch>`) deletes the experiment.
// - refs/labtest/<branch>: a client delivering its code before its own create or update
//   (`git push … <commit>:refs/labtest/<branch>`, then `code: {kind: "pushed", commit}`): stored,
//   and nothing else happens.
// - any other ref: refused.
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { isValidName } from "../config/names.js";
import { UsageError } from "../errors.js";
import { ensureCodeRepository, installHooks } from "../experiments/code-store.js";
import { type AuditSink, type Identity, mayTouch, PermissionError } from "../laboratory/identity.js";
import { type Scope, scopeAllows } from "../laboratory/wire.js";
import { IDENTITY_VARIABLE, PUSH_HOOKS, sshOrigin } from "./hook-contract.js";

/** The git programs an SSH key may run, and the scope each needs. */
const GIT_PROGRAMS = {
  "git-upload-pack": { scope: "read", git: "upload-pack" },
  "git-receive-pack": { scope: "deploy", git: "receive-pack" },
} as const satisfies Record<string, { scope: Scope; git: string }>;

type GitProgram = keyof typeof GIT_PROGRAMS;

/** A git command an SSH client asked for: which program, on which app's repository. */
export interface GitCommand {
  program: GitProgram;
  app: string;
}

/**
 * `git-upload-pack '<app>.git'` or `git-receive-pack '<app>.git'` as git sends it over SSH (the
 * path with or without a leading slash, quotes and `.git`), given as its words or as one string;
 * undefined for anything else. Parsed, never run through a shell.
 */
export function parseGitCommand(argv: string[]): GitCommand | undefined {
  const match = /^(git-upload-pack|git-receive-pack) (?:'([^']*)'|([^'\s]*))$/.exec(argv.join(" "));
  const program = match?.[1] as GitProgram | undefined;
  const path = match?.[2] ?? match?.[3];
  const app = path?.replace(/^\//, "").replace(/\.git$/, "");
  return program && app && isValidName(app) ? { program, app } : undefined;
}

export interface GitAccessOptions {
  /** The laboratory's home, whose code/<app>.git repositories are served. */
  home: string;
  env: NodeJS.ProcessEnv;
  /** Where a push's acceptance or refusal is recorded (a fetch changes nothing and is not). */
  audit: AuditSink;
}

/**
 * Runs the git command `argv` (SSH_ORIGINAL_COMMAND's words) for `identity`, with this process's
 * stdin, stdout and stderr as git's; resolves to git's exit code. Throws a UsageError for anything
 * but a git fetch or push of an app's repository, and a PermissionError when the identity lacks
 * the scope or the app. A push runs the repository's hooks as the identity (see push-hook.ts).
 */
export async function serveGitCommand(
  argv: string[],
  identity: Identity,
  options: GitAccessOptions,
): Promise<number> {
  const command = parseGitCommand(argv);
  if (!command)
    throw new UsageError("this SSH access speaks git fetch and push of an app's repository only", [
      {
        where: "the SSH command",
        what: `${argv.join(" ").slice(0, 200) || "no command"} is neither git-upload-pack nor git-receive-pack of <app>.git`,
        fix: "add the laboratory as a git remote with labtest remote add, or use labtest's own commands",
      },
    ]);
  const { program, app } = command;
  const { scope, git } = GIT_PROGRAMS[program];
  const pushes = program === "git-receive-pack";
  const record = async (result: string) => {
    if (pushes)
      await options.audit.record({
        at: new Date().toISOString(),
        who: identity.name,
        what: "codePush",
        target: app,
        result,
        from: sshOrigin(options.env),
      });
  };
  try {
    mayUse(identity, app, scope, pushes ? "push to" : "fetch from");
  } catch (error) {
    if (error instanceof PermissionError) await record(`${error.name}: ${error.summary}`);
    throw error;
  }
  const repository = await ensureCodeRepository(options.home, app);
  if (pushes) await installHooks(repository, pushHookScripts());
  await record("ok");
  const served = await execa("git", [git, repository], {
    stdio: "inherit",
    reject: false,
    env: { ...options.env, LABTEST_HOME: options.home, [IDENTITY_VARIABLE]: JSON.stringify(identity) },
    extendEnv: false,
  });
  return served.exitCode ?? 1;
}

function mayUse(identity: Identity, app: string, scope: Scope, what: string): void {
  if (!scopeAllows(identity.scope, scope))
    throw new PermissionError(
      identity,
      `${what} the repository of ${app}: it needs the ${scope} scope, and has ${identity.scope}`,
      `ask an administrator of the laboratory for a key added with --scope ${scope}`,
    );
  if (!mayTouch(identity, app))
    throw new PermissionError(
      identity,
      `${what} the repository of ${app}: it may touch ${identity.apps.join(", ")} only`,
      `ask an administrator of the laboratory for a key added with --app ${app}`,
    );
}

/**
 * The hook scripts: each runs this labtest's hidden `git-hook` command with the node running now
 * (absolute paths: the hooks run with whatever PATH the SSH session has). A client delivering its
 * code (refs/labtest/* alone, before each create or update over SSH) publishes nothing, and the
 * scripts start no labtest for it: that start-up would be most of the delivery's time.
 */
export function pushHookScripts(
  programs = {
    node: process.execPath,
    labtest: fileURLToPath(new URL("../../bin/labtest.js", import.meta.url)),
  },
): Record<string, string> {
  const quoted = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  return Object.fromEntries(
    PUSH_HOOKS.map((hook) => [
      hook,
      [
        "#!/bin/sh",
        "# Installed by labtest: a push publishes the branch's experiment.",
        "updates=$(cat)",
        `if printf '%s\\n' "$updates" | grep -qv '^[0-9a-f]* [0-9a-f]* refs/labtest/'; then`,
        `  printf '%s\\n' "$updates" | exec ${quoted(programs.node)} ${quoted(programs.labtest)} git-hook ${hook}`,
        "fi",
        "",
      ].join("\n"),
    ]),
  );
}
