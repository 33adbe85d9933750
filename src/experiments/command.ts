import { parse } from "shell-quote";
import { ExperimentError } from "./errors.js";

/**
 * A configured command as the argv a shell would make of it (quotes, escapes, `$NAME` from
 * `env`), without running a shell: nothing in it is ever interpreted by one. Shell operators
 * have no meaning here, so they are an error that says how to use a shell on purpose.
 */
export function commandArgv(option: string, command: string, env: Record<string, string>): string[] {
  const argv: string[] = [];
  for (const token of parse(command, (name) => env[name] ?? "")) {
    if (typeof token === "string") argv.push(token);
    else if ("pattern" in token) argv.push(token.pattern);
    else if ("op" in token)
      throw new ExperimentError(`${option} uses the shell operator ${token.op}, and no shell runs it`, [
        {
          where: `labtest.${option}`,
          what: command,
          fix: `run a shell on purpose: sh -c '…' (or put the steps in a script)`,
        },
      ]);
  }
  if (argv.length === 0)
    throw new ExperimentError(`${option} is empty`, [
      {
        where: `labtest.${option}`,
        what: "no program to run",
        fix: "name the program, or remove the option",
      },
    ]);
  return argv;
}
