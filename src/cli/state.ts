import type { Command } from "commander";
import { Option } from "commander";
import { PROTOCOL_VERSION as v } from "../laboratory/protocol-constants.js";
// The state's own small modules, not state/index.js: that brings the stores' providers (their
// clients, yaml), which only the laboratory opening a store needs.
import { StateError } from "../state/errors.js";
import { validateKey } from "../state/keys.js";
import { type Lookup, MERGE_STRATEGIES, type MergeStrategy } from "../state/lookup.js";
import { parseValue } from "../state/store.js";
import { type CliIo, type GlobalOptions, writeJson } from "./io.js";
import { withLab } from "./laboratory.js";

export interface StateGlobals extends GlobalOptions {
  state?: string;
}

/** `labtest state get|check|set|unset`: read administrator state; write it on local stores. */
export function registerStateCommands(program: Command, io: CliIo): void {
  const state = program
    .command("state")
    .description("read the laboratory's state (administrator defaults and overrides)");

  state
    .command("get <key>")
    .description("print the value a lookup of KEY finds (JSON), walking up to /default")
    .option("--explain", "show every candidate tried and which one answered")
    .addOption(
      new Option("--merge <strategy>", "first: most specific value wins; deep: merge objects field by field")
        .choices(MERGE_STRATEGIES)
        .default("first"),
    )
    .action(async (key: string, options: { explain?: boolean; merge: MergeStrategy }, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      const result = await withLab(io, globals, undefined, (lab) =>
        lab.stateGet({ v, key, merge: options.merge }),
      );
      if (globals.json) writeJson(io, result);
      else if (options.explain) io.stdout(explain(result));
      else if (result.found) io.stdout(`${JSON.stringify(result.value, null, 2)}\n`);
      if (!result.found) {
        if (!globals.json)
          throw new StateError(
            `no state value for ${key}; tried ${result.candidates.map((c) => c.key).join(", ")}`,
          );
        io.exitCode = 1;
      }
    });

  state
    .command("check")
    .description("validate state.json and reach the store it names")
    .action(async (_options, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      const report = await withLab(io, globals, undefined, (lab) => lab.stateCheck({ v }));
      if (globals.json) writeJson(io, report);
      else if (report.file === null) io.stdout("no state.json: state is empty and built-in defaults apply\n");
      else io.stdout(`state is ${report.provider}/${report.service} from ${report.file}: reachable\n`);
      if (!globals.json)
        for (const warning of report.warnings ?? []) io.stderr(`labtest: warning: ${warning}\n`);
    });

  state
    .command("set <key> <value>")
    .description("set KEY on a local file or directory store (VALUE is JSON, else a string)")
    .action(async (key: string, value: string, _options, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      // Checked here as well, so that a mistyped key is said before the laboratory is reached.
      validateKey(key);
      await withLab(io, globals, undefined, (lab) => lab.stateSet({ v, key, value: parseValue(value) }));
    });

  state
    .command("unset <key>")
    .description("remove KEY from a local file or directory store")
    .action(async (key: string, _options, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      validateKey(key);
      const { removed } = await withLab(io, globals, undefined, (lab) => lab.stateUnset({ v, key }));
      if (!removed) io.stderr(`labtest: ${key} was not set\n`);
    });
}

/** The `--state` option, for the commands that read state. */
export function stateOption(): Option {
  return new Option(
    "--state <path>",
    "state.json to use (default: $LABTEST_STATE, else $LABTEST_HOME/state.json)",
  );
}

function explain(result: Lookup): string {
  const width = Math.max(...result.candidates.map((c) => c.key.length));
  const lines = [`lookup of ${result.key} (merge: ${result.merge})`];
  result.candidates.forEach((c, i) => {
    const mark =
      c.key === result.answeredBy
        ? "answered"
        : c.found
          ? result.merge === "deep"
            ? "merged"
            : "found, less specific"
          : "-";
    lines.push(`  ${i + 1}. ${c.key.padEnd(width)}  ${mark}`);
  });
  if (result.fieldSources) {
    lines.push("fields:");
    for (const [field, source] of Object.entries(result.fieldSources)) lines.push(`  ${field}  ← ${source}`);
  }
  lines.push(result.found ? `value: ${JSON.stringify(result.value)}` : "value: none (no candidate exists)");
  return `${lines.join("\n")}\n`;
}
