import { resolve } from "node:path";
import { Argument, type Command } from "commander";
import { gitToplevel } from "../config/git.js";
import type { LaboratoryAddress } from "../config/host.js";
import { UsageError } from "../errors.js";
import { PUSH_HOOKS, type PushHook } from "../server/hook-contract.js";
import { commandConfig } from "./config.js";
import type { CliIo } from "./io.js";
import { chosenLaboratory } from "./laboratory.js";
import type { StateGlobals } from "./state.js";

/**
 * `labtest remote add`: the laboratory as a git remote of the working copy, so that
 * `git push labtest <branch>` publishes the branch's experiment; and the hidden `git-hook`
 * the laboratory's repositories run when pushed to.
 */
export function registerRemoteCommands(program: Command, io: CliIo): void {
  const remote = program.command("remote").description("the laboratory as a git remote: git push publishes");
  remote
    .command("add [name]")
    .description(
      "add the laboratory (an SSH host) as git remote NAME (default labtest): git push labtest BRANCH creates or updates its experiment, git push labtest :BRANCH deletes it",
    )
    .option("--print", "print the git remote add command instead of running it")
    .action(async (name: string | undefined, options: { print?: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      const loaded = await commandConfig(io, globals);
      const url = remoteUrl(await chosenLaboratory(io, globals, loaded), loaded.config.app_name);
      const remoteName = name ?? "labtest";
      if (options.print) return io.stdout(`git remote add ${remoteName} ${url}\n`);
      const repository = await gitToplevel(loaded.directory);
      if (!repository)
        throw new UsageError(`${loaded.directory} is not in a git repository`, [
          {
            where: loaded.directory,
            what: "a git remote belongs to a repository",
            fix: "run it in the app's working copy, or pass --print for the command",
          },
        ]);
      const { execa } = await import("execa");
      const added = await execa("git", ["-C", repository, "remote", "add", "--", remoteName, url], {
        reject: false,
      });
      if (added.exitCode !== 0)
        throw new UsageError(`git cannot add remote ${remoteName}`, [
          {
            where: repository,
            what: added.stderr.trim() || `git remote add exited with ${added.exitCode}`,
            fix: `choose another name (labtest remote add NAME), or point it here: git remote set-url ${remoteName} ${url}`,
          },
        ]);
      io.stdout(
        `added git remote ${remoteName}: ${url}\npublish a branch with: git push ${remoteName} BRANCH\n`,
      );
    });

  program
    .command("git-hook", { hidden: true })
    .description("run by the laboratory's app repositories when pushed to")
    .addArgument(new Argument("<hook>").choices(PUSH_HOOKS))
    .action(async (hook: PushHook) => {
      // Git runs a bare repository's hooks inside it, GIT_DIR naming it relative to there.
      const repository = resolve(io.cwd, io.env.GIT_DIR ?? ".");
      const { runPushHook } = await import("../server/push-hook.js");
      await runPushHook(hook, { repository, input: await io.readStdin(), env: io.env, print: io.stdout });
    });
}

/** The git URL of `app`'s repository on the laboratory at `address`, which must be reached over SSH. */
function remoteUrl(address: LaboratoryAddress, app: string): string {
  if (address.kind !== "ssh")
    throw new UsageError("git push publishes to a laboratory reached over SSH", [
      {
        where: "labtest.host",
        what: address.kind === "local" ? "this machine's laboratory" : `an HTTPS laboratory (${address.url})`,
        fix: "set host to ssh://user@host[:port] (or pass --lab) for the laboratory's SSH access",
      },
    ]);
  const user = address.user === undefined ? "" : `${encodeURIComponent(address.user)}@`;
  const port = address.port === undefined ? "" : `:${address.port}`;
  return `ssh://${user}${address.host}${port}/${app}.git`;
}
