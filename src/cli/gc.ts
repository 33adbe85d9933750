import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { type CliIo, writeJson } from "./io.js";
import { withLaboratory } from "./services.js";
import type { StateGlobals } from "./state.js";

/** `labtest gc`: removes what crashes left on the laboratory and nothing that is accounted for. */
export function registerGcCommand(program: Command, io: CliIo): void {
  program
    .command("gc")
    .description(
      "remove what crashed commands left behind: half-created services, unrecorded servers, containers, volumes, networks",
    )
    .option(
      "--grace <seconds>",
      "leave alone what is younger than this (a command may still be creating it)",
      "300",
    )
    .action(async (options: { grace: string }, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      const grace = Number(options.grace);
      if (!Number.isFinite(grace) || grace < 0)
        throw new UsageError(`--grace ${options.grace} is not a number of seconds`, [
          { where: "--grace", what: "expected a number ≥ 0", fix: "e.g. --grace 300" },
        ]);
      const removed = await withLaboratory(io, globals, (lab) => lab.collectGarbage(grace * 1000));
      if (globals.json) writeJson(io, { removed });
      else
        io.stdout(
          removed.length ? removed.map((line) => `removed ${line}\n`).join("") : "nothing to remove\n",
        );
    });
}
