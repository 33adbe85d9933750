// `git push labtest <branch>`: the hooks of an app's repository on the laboratory (installed by
// git-access.ts, which states what each ref means). pre-receive checks every branch pushed — its
// name against the laboratory's pattern, its configuration as create reads it — and a refusal
// rejects the whole push, before any ref moves or anything is created. post-receive then creates,
// updates or deletes the branches' experiments as the pushing key's identity. What both print
// reaches the pusher as git's `remote:` lines.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { basename, dirname, join } from "node:path";
import { execa } from "execa";
import { z } from "zod";
import { CANDIDATE_FILES } from "../config/discover.js";
import { readConfigDocument } from "../config/formats.js";
import { type LoadedConfig, loadConfig } from "../config/resolve.js";
import { ConfigError, LabtestError, type Problem, UsageError } from "../errors.js";
import { codeRepository } from "../experiments/code-store.js";
import { EmbeddedLaboratory } from "../laboratory/embedded.js";
import type { Identity } from "../laboratory/identity.js";
import type { Laboratory } from "../laboratory/laboratory.js";
import type { EventSink } from "../laboratory/protocol.js";
import { PROTOCOL_VERSION as v } from "../laboratory/protocol-constants.js";
import { SCOPES } from "../laboratory/wire.js";
import { AuditLog, auditedLaboratory } from "./audit.js";
import { IDENTITY_VARIABLE, type PushHook, sshOrigin } from "./hook-contract.js";

/**
 * The state key of the branches a push may publish, per app: `/push/branches/<app>`, else
 * `/push/branches/default` — a pattern (`feature/*`; `*` within a path segment, `**` across) or a
 * list of them. None: every branch.
 */
export const PUSH_BRANCHES_KEY = "/push/branches";

/** Git's id of no commit: the old side of a new ref, the new side of a deleted one. */
const NO_COMMIT = /^0+$/;

/** The variables git gives a hook to find the pushed-to repository (and its quarantined objects). */
const REPOSITORY_VARIABLES = [
  "GIT_DIR",
  "GIT_WORK_TREE",
  "GIT_INDEX_FILE",
  "GIT_OBJECT_DIRECTORY",
  "GIT_ALTERNATE_OBJECT_DIRECTORIES",
  "GIT_QUARANTINE_PATH",
  "GIT_COMMON_DIR",
  "GIT_NAMESPACE",
  "GIT_PREFIX",
];

const identitySchema = z.object({
  name: z.string().min(1),
  scope: z.enum(SCOPES),
  apps: z.array(z.string()),
});

/** One ref a push moves, as a hook reads it on its stdin. */
interface RefUpdate {
  old: string;
  new: string;
  ref: string;
}

/** Where a hook runs: the repository (git runs hooks inside it), its stdin, the environment git gave it. */
export interface HookContext {
  repository: string;
  input: string;
  env: NodeJS.ProcessEnv;
  print: (text: string) => void;
}

/**
 * Runs `hook` for the refs of `input`. Throws (rejecting the push, from pre-receive) what is wrong
 * with them. The repository's variables leave this process's environment first: the experiment's
 * own git commands work on other repositories.
 */
export async function runPushHook(hook: PushHook, context: HookContext): Promise<void> {
  const repositoryEnv = Object.fromEntries(REPOSITORY_VARIABLES.map((name) => [name, context.env[name]]));
  for (const name of REPOSITORY_VARIABLES) delete process.env[name];
  const home = dirname(dirname(context.repository));
  const app = basename(context.repository).replace(/\.git$/, "");
  const identity = pusher(context.env);
  const env = { ...process.env, LABTEST_HOME: home };
  const embedded = new EmbeddedLaboratory({ env, cwd: home, acceptsLocalPaths: false });
  const audit = new AuditLog(home);
  const lab = auditedLaboratory(
    embedded,
    identity,
    audit,
    context.env[IDENTITY_VARIABLE] === undefined ? "local" : sshOrigin(context.env),
  );
  const push: Push = {
    lab,
    home,
    app,
    identity,
    print: context.print,
    readsPushed: { ...process.env, ...repositoryEnv, GIT_DIR: context.repository },
  };
  try {
    const updates = refUpdates(context.input);
    if (hook === "pre-receive") await checkPush(push, updates);
    else for (const update of updates) await publish(push, update);
  } finally {
    audit.close();
    await lab.close();
  }
}

/** What a push's hook works with: the laboratory as the pusher, the app, and git's environment to read the pushed commits. */
interface Push {
  lab: Laboratory;
  home: string;
  app: string;
  identity: Identity;
  print: (text: string) => void;
  readsPushed: NodeJS.ProcessEnv;
}

/** Who pushes: the SSH key's identity, or — a push on the laboratory's machine itself — its user, as an administrator. */
function pusher(env: NodeJS.ProcessEnv): Identity {
  const given = env[IDENTITY_VARIABLE];
  if (given === undefined) return { name: env.SUDO_USER || userInfo().username, scope: "admin", apps: [] };
  return identitySchema.parse(JSON.parse(given));
}

function refUpdates(input: string): RefUpdate[] {
  return input
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [old = "", updated = "", ref = ""] = line.trim().split(" ");
      return { old, new: updated, ref };
    });
}

/** The branch a ref publishes (refs/heads/<branch>), undefined for a delivery (refs/labtest/*); other refs are refused. */
function publishedBranch(ref: string): string | undefined {
  if (ref.startsWith("refs/heads/")) return ref.slice("refs/heads/".length);
  if (ref.startsWith("refs/labtest/")) return undefined;
  throw new UsageError(`the laboratory takes branches only, not ${ref}`, [
    {
      where: ref,
      what: "a push publishes refs/heads/<branch> as an experiment; tags and other refs have no experiment",
      fix: "push a branch: git push labtest <branch>",
    },
  ]);
}

/** pre-receive: every branch pushed is one the laboratory publishes, with a configuration create takes. */
async function checkPush(push: Push, updates: RefUpdate[]): Promise<void> {
  const allowed = await allowedBranches(push);
  for (const update of updates) {
    const branch = publishedBranch(update.ref);
    if (branch === undefined) continue;
    if (allowed && !allowed.patterns.some((pattern) => globMatches(pattern, branch)))
      throw new UsageError(`the laboratory does not publish branch ${branch}`, [
        {
          where: `${allowed.key} (the laboratory's state)`,
          what: `pushes publish branches matching ${allowed.patterns.join(", ")} only`,
          fix: "push a branch matching it, or ask an administrator of the laboratory to widen it",
        },
      ]);
    if (!NO_COMMIT.test(update.new)) await withPushedConfig(push, branch, update.new, async () => undefined);
  }
}

/** post-receive: the branch's experiment created, updated or deleted as the push asks. */
async function publish(push: Push, update: RefUpdate): Promise<void> {
  const branch = publishedBranch(update.ref);
  if (branch === undefined) return;
  const { lab, app, identity, print } = push;
  const existing = (await lab.list({ v, app })).find((experiment) => experiment.branch === branch);
  const events = printed(print);
  const who = identity.name;
  if (NO_COMMIT.test(update.new)) {
    if (!existing) return print(`labtest: branch ${branch} has no experiment to delete\n`);
    const deletion = await lab.delete({ v, app, name: existing.name, who }, events);
    return print(
      deletion.deleted === null ? `labtest: ${deletion.note}\n` : `deleted ${app}/${deletion.deleted}\n`,
    );
  }
  const code = { kind: "pushed" as const, commit: update.new };
  await withPushedConfig(push, branch, update.new, async (config) => {
    const project = { config, subdirectory: "" };
    if (existing) {
      const updated = await lab.update({ v, project, name: existing.name, code, who }, events);
      print(
        `${updated.app}/${updated.name} runs release ${updated.release.slice(0, 12)} at ${updated.url}\n`,
      );
    } else {
      const created = await lab.create({ v, project, branch, code, who }, events);
      print(`${created.app}/${created.name} is running at ${created.url}\n`);
    }
  });
}

/** Steps as the CLI shows them (`… step`), a program's output as it is. */
function printed(print: (text: string) => void): EventSink {
  return (event) => print(event.type === "step" ? `… ${event.text}\n` : event.text);
}

/**
 * Runs `use` with the configuration of `commit` at the top of its tree, read as create reads a
 * working copy's (the first of .labtest.yml, .labtest.yaml, setup.cfg, package.json with a labtest
 * section), the app being the repository's. Its errors name the file as the commit has it.
 */
async function withPushedConfig<T>(
  push: Push,
  branch: string,
  commit: string,
  use: (config: LoadedConfig) => Promise<T>,
): Promise<T> {
  const directory = await mkdtemp(join(tmpdir(), "labtest-pushed-"));
  const where = `${branch} at ${commit.slice(0, 12)}`;
  try {
    for (const [name, format] of CANDIDATE_FILES) {
      const contents = await pushedFile(push, commit, name, where);
      if (contents === undefined) continue;
      const file = join(directory, name);
      await writeFile(file, contents);
      if ((await readConfigDocument(file, format)).section === undefined) continue;
      const identity = { app_name: push.app, code_repo_url: codeRepository(push.home, push.app) };
      const config = await loadConfig({ configPath: file, identity, env: {} }).catch((error: unknown) => {
        throw error instanceof LabtestError ? asPushed(error, directory, where) : error;
      });
      return await use(config);
    }
    throw new ConfigError(`branch ${branch} has no labtest configuration`, [
      {
        where,
        what: `none of ${CANDIDATE_FILES.map(([name]) => name).join(", ")} at the top of its tree has a labtest section`,
        fix: "commit a .labtest.yml with a labtest section to the branch and push again",
      },
    ]);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** The contents of file `name` at the top of `commit`'s tree; undefined when there is none. A link is refused: the laboratory reads the branch's own files only. */
async function pushedFile(
  push: Push,
  commit: string,
  name: string,
  where: string,
): Promise<Uint8Array | undefined> {
  const git = (args: string[]) =>
    execa("git", args, { env: push.readsPushed, extendEnv: false, encoding: "buffer" });
  const listed = Buffer.from((await git(["ls-tree", commit, "--", name])).stdout).toString();
  if (listed === "") return undefined;
  const [mode = "", type = "", blob = ""] = listed.split(/\s/);
  if (type !== "blob" || mode === "120000")
    throw new ConfigError(`the branch's ${name} is not a file`, [
      {
        where: `${name} of ${where}`,
        what: "a symbolic link or a directory",
        fix: "commit the configuration itself",
      },
    ]);
  return (await git(["cat-file", "blob", blob])).stdout;
}

/** `error` with the temporary copy's paths replaced by the file's name in the commit. */
function asPushed(error: LabtestError, directory: string, where: string): LabtestError {
  const named = (text: string) => text.replaceAll(`${directory}/`, "");
  const problems: Problem[] = error.problems.map((problem) => ({
    ...problem,
    where: named(problem.where),
    what: named(problem.what),
  }));
  return new ConfigError(`${where}: ${named(error.summary)}`, problems);
}

/** The branch patterns of the app's state key (see PUSH_BRANCHES_KEY); undefined when none is set. */
async function allowedBranches(push: Push): Promise<{ key: string; patterns: string[] } | undefined> {
  const lookup = await push.lab.stateGet({ v, key: `${PUSH_BRANCHES_KEY}/${push.app}` });
  // The lookup's general fallbacks (/push/default, /default) hold other settings: only keys under
  // /push/branches name branches.
  const found = lookup.candidates.find((c) => c.found && c.key.startsWith(`${PUSH_BRANCHES_KEY}/`));
  if (!found) return undefined;
  const patterns = typeof found.value === "string" ? [found.value] : found.value;
  if (!Array.isArray(patterns) || !patterns.every((pattern) => typeof pattern === "string"))
    throw new ConfigError(`the laboratory's state key ${found.key} is not a branch pattern`, [
      {
        where: found.key,
        what: `${JSON.stringify(found.value)} is neither a pattern nor a list of patterns`,
        fix: `set it to a pattern such as "feature/*", or a list of them`,
      },
    ]);
  return { key: found.key, patterns };
}

/** Whether `branch` matches `pattern`: `*` within a path segment, `**` across segments, the rest literal. */
export function globMatches(pattern: string, branch: string): boolean {
  const source = pattern
    .split("**")
    .map((part) =>
      part
        .split("*")
        .map((literal) => literal.replace(/[\\^$.|?+()[\]{}]/g, "\\$&"))
        .join("[^/]*"),
    )
    .join(".*");
  return new RegExp(`^${source}$`).test(branch);
}
