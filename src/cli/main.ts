import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { EXIT_BUG, LabtestError } from "../errors.js";
import { registerConfigCommands } from "./config.js";
import { registerExperimentCommands } from "./experiments.js";
import { diskFullError } from "./faults.js";
import { registerGcCommand } from "./gc.js";
import { type CliIo, labOption, maskedIo, processIo, writeJson } from "./io.js";
import { registerLabCommands } from "./lab.js";
import { registerLabtestCommands, withLabtestSpellings } from "./labtest.js";
import { registerLoginCommands } from "./login.js";
import { registerRemoteCommands } from "./remote.js";
import { registerSecretCommands } from "./secrets.js";
import { registerServeCommand } from "./serve.js";
import { registerServersCommands } from "./servers.js";
import { registerServicesCommands } from "./services.js";
import { registerStateCommands, stateOption } from "./state.js";
import { registerAccessCommands } from "./tokens.js";

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** Builds the command tree; each command group registers itself from its own module. */
export function buildProgram(io: CliIo): Command {
  const program = new Command("labtest")
    .description("Run every branch of an application as its own experiment, with its own services.")
    .version(VERSION, "-V, --version", "print the labtest version")
    .option(
      "-c, --config <path>",
      "configuration file to use instead of discovering one (.yml, .yaml, .json, .cfg, .ini)",
    )
    .option("--json", "print machine-readable JSON instead of text")
    .option("-v, --verbose", "print each step of create and update, also when not on a terminal")
    .addOption(stateOption())
    .addOption(labOption())
    .showHelpAfterError("(run labtest --help for usage)")
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  registerConfigCommands(program, io);
  registerStateCommands(program, io);
  registerServicesCommands(program, io);
  registerGcCommand(program, io);
  registerServersCommands(program, io);
  registerExperimentCommands(program, io);
  registerLabCommands(program, io);
  registerServeCommand(program, io);
  registerSecretCommands(program, io);
  registerLoginCommands(program, io);
  registerRemoteCommands(program, io);
  registerAccessCommands(program, io);
  registerLabtestCommands(program, io, VERSION);
  return program;
}

/** Runs the CLI with `argv` (without node and script) and returns the process exit code. */
export async function main(argv: string[], unmasked: CliIo = processIo()): Promise<number> {
  const io = maskedIo(unmasked);
  const program = buildProgram(io);
  try {
    await program.parseAsync(withLabtestSpellings(program, argv), { from: "user" });
    return io.exitCode ?? 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    const json = program.opts<{ json?: boolean }>().json === true;
    const known = error instanceof LabtestError ? error : await diskFullError(error, io.env);
    if (known) {
      if (json)
        writeJson(io, { error: { type: known.name, message: known.message, problems: known.problems } });
      else io.stderr(`labtest: ${known.message}\n`);
      return known.exitCode;
    }
    io.stderr(
      `labtest: unexpected error — this is a bug in labtest; please report it with this output.\n${(error as Error)?.stack ?? String(error)}\n`,
    );
    return EXIT_BUG;
  }
}
