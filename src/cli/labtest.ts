import type { Command } from "commander";
import { runInExperiment } from "./experiments.js";
import type { CliIo } from "./io.js";

/**
 * LabTest's spellings of our commands, for scripts written for LabTest (CityOfBoston/labtest):
 * `version` and `test NAME COMMAND…`. Their help names the modern spelling.
 */
export function registerLabtestCommands(program: Command, io: CliIo, version: string): void {
  program
    .command("version")
    .description("print the labtest version (LabTest's spelling of --version)")
    .action(() => io.stdout(`${version}\n`));

  program
    .command("test <name> <command...>")
    .description(
      "run COMMAND in the experiment, options and all (LabTest's spelling of labtest exec NAME -- COMMAND)",
    )
    .action(runInExperiment(io));
}

/**
 * `argv` with the `--` that LabTest's `test NAME COMMAND…` goes without put after NAME: what
 * follows the experiment's name is the command's, options included, as LabTest passed it on.
 * labtest's own options still go before COMMAND (`labtest --json test NAME …`).
 */
export function withLabtestSpellings(program: Command, argv: string[]): string[] {
  const taking = new Set(
    program.options.filter((o) => o.required || o.optional).flatMap((o) => [o.short, o.long]),
  );
  const command = operandAt(argv, 0, taking);
  if (command === undefined || argv[command] !== "test") return argv;
  const name = operandAt(argv, command + 1, taking);
  if (name === undefined || argv[name + 1] === "--") return argv;
  return [...argv.slice(0, name + 1), "--", ...argv.slice(name + 1)];
}

/** Where the first operand from `from` on is, skipping options and the values `taking` ones take. */
function operandAt(argv: string[], from: number, taking: Set<string | undefined>): number | undefined {
  for (let i = from; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") return undefined;
    if (arg === "-" || !arg.startsWith("-")) return i;
    if (taking.has(arg)) i++;
  }
  return undefined;
}
