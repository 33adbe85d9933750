import { resolve } from "node:path";
import { execa } from "execa";
import { z } from "zod";
import { StateError } from "../errors.js";
import { parseValue, type StateStore } from "../store.js";
import { defineStateProvider } from "./definition.js";

const TIMEOUT_MS = 10_000;

/**
 * `local`/`script`: LabTest-compatible `<command> <key>` printing the value; empty output means
 * absent. `command` is an executable, or an argv list; never run through a shell.
 */
export const localScript = defineStateProvider({
  provider: "local",
  service: "script",
  options: z.strictObject({ command: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]) }),
  open: (options, context) => {
    const [program = "", ...args] = typeof options.command === "string" ? [options.command] : options.command;
    return scriptStore(program.includes("/") ? resolve(context.directory, program) : program, args);
  },
});

export function scriptStore(program: string, args: readonly string[]): StateStore {
  async function readOne(key: string): Promise<[string, unknown] | undefined> {
    const result = await execa(program, [...args, key], {
      reject: false,
      timeout: TIMEOUT_MS,
      stripFinalNewline: true,
    });
    if (result.timedOut)
      throw new StateError(
        `the state script ${program} did not answer for ${key} within ${TIMEOUT_MS / 1000} s`,
        "make it answer faster, or fix it",
        { where: `state script ${program}` },
      );
    if (result.failed) {
      const detail = result.stderr.trim() || result.shortMessage;
      throw new StateError(
        `the state script ${program} failed for ${key}: ${detail}`,
        "fix the script, or options.command in state.json",
        { where: `state script ${program}` },
      );
    }
    return result.stdout.trim() === "" ? undefined : [key, parseValue(result.stdout)];
  }
  return {
    async read(keys) {
      const entries = await Promise.all(keys.map(readOne));
      return new Map(entries.filter((e) => e !== undefined));
    },
    close: async () => undefined,
  };
}
