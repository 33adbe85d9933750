import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { Experiments } from "../experiments/index.js";
import { labtestHome } from "../lab/home.js";
import { routerPort } from "../lab/router-control.js";
import { type CliIo, writeJson } from "./io.js";
import { type StateGlobals, withState } from "./state.js";

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
      const removals = await withState(io, globals, async (opened) => {
        const lab = new Experiments({
          home: labtestHome(io.env),
          state: opened.store,
          routerPort: routerPort(io.env),
        });
        try {
          return await lab.collectGarbage(grace * 1000, { dryRun });
        } finally {
          await lab.close();
        }
      });
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
