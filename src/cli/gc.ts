import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { PROTOCOL_VERSION as v } from "../laboratory/protocol-constants.js";
import { type CliIo, writeJson } from "./io.js";
import { withLab } from "./laboratory.js";
import type { StateGlobals } from "./state.js";

/** `labtest gc`: removes what crashes left on the laboratory and nothing that is accounted for. */
export function registerGcCommand(program: Command, io: CliIo): void {
  program
    .command("gc")
    .description(
      "remove what crashed commands left behind: half-created experiments and services, unrecorded servers, apps, containers, volumes, networks, accounts, locks",
    )
    .option(
      "--grace <seconds>",
      "leave alone what is younger than this (a command may still be creating it)",
      "300",
    )
    .option("--dry-run", "print what would be removed and why, and remove nothing")
    .action(async (options: { grace: string; dryRun?: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      const grace = Number(options.grace);
      if (!Number.isFinite(grace) || grace < 0)
        throw new UsageError(`--grace ${options.grace} is not a number of seconds`, [
          { where: "--grace", what: "expected a number ≥ 0", fix: "e.g. --grace 300" },
        ]);
      const dryRun = options.dryRun === true;
      const removals = await withLab(io, globals, undefined, (lab) =>
        lab.gc({ v, graceMs: grace * 1000, dryRun }),
      );
      const verb = dryRun ? "would remove" : "removed";
      if (globals.json) writeJson(io, { dryRun, removals });
      else
        io.stdout(
          removals.length
            ? removals.map(({ what, why }) => `${verb} ${what} (${why})\n`).join("")
            : "nothing to remove\n",
        );
    });
}
