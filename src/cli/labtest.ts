import type { Command } from "commander";
import { parse } from "shell-quote";
import { shellOperator } from "../config/commands.js";
import { UsageError } from "../errors.js";
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
    .action((name: string, argv: string[], options: unknown, command: Command) =>
      runInExperiment(io)(name, labtestCommand(argv), options, command),
    );
}

/**
 * LabTest's `test NAME "python manage.py migrate"`: a COMMAND given as one operand with spaces
 * (LabTest ran it through a shell) split as a shell would, then run without one, as labtest runs
 * configured commands. Shell operators and variables need a shell: an error says how to use one.
 */
function labtestCommand(argv: string[]): string[] {
  const [only] = argv;
  if (argv.length !== 1 || only === undefined || !/\s/.test(only)) return argv;
  const variables: string[] = [];
  const words = parse(only, (variable) => {
    variables.push(`$${variable}`);
    return "";
  }).map((token) => (typeof token === "object" && "pattern" in token ? token.pattern : token));
  const operator = shellOperator(only);
  const needing = operator ?? variables[0];
  if (needing !== undefined)
    throw new UsageError(
      `COMMAND uses the shell ${operator ? "operator" : "variable"} ${needing}, and no shell runs it`,
      [{ where: "COMMAND", what: only, fix: `run a shell on purpose: labtest test NAME sh -c '${only}'` }],
    );
  return words.filter((word) => typeof word === "string");
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
