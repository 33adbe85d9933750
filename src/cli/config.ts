import { relative } from "node:path";
import type { Command } from "commander";
import type { LoadedConfig, OptionName, ValueSource } from "../config/resolve.js";
import { UsageError } from "../errors.js";
import { type CliIo, type GlobalOptions, writeJson } from "./io.js";

/**
 * The configuration a command runs with: `--config`, or the one discovered from where it runs.
 * Its loader (the formats' parsers, the schema) loads here: commands without one never pay for it.
 */
export async function commandConfig(io: CliIo, globals: GlobalOptions): Promise<LoadedConfig> {
  const { loadConfig } = await import("../config/resolve.js");
  return loadConfig({ cwd: io.cwd, env: io.env, ...(globals.config ? { configPath: globals.config } : {}) });
}

/**
 * The app whose `what` a listing shows: the configuration's. Outside an app, a usage error
 * that says how to list every app's instead.
 */
export async function listedApp(io: CliIo, globals: GlobalOptions, what: string): Promise<string> {
  try {
    return (await commandConfig(io, globals)).config.app_name;
  } catch (error) {
    // Loaded already, by the loader that threw.
    const { ConfigNotFoundError } = await import("../config/discover.js");
    if (!(error instanceof ConfigNotFoundError)) throw error;
    throw new UsageError(`which app's ${what}? No labtest configuration is found from ${io.cwd}`, [
      {
        where: io.cwd,
        what: "not inside an app, and no --config names one",
        fix: `run it in an app's directory, or pass --all for every app's ${what}`,
      },
    ]);
  }
}

/** `labtest check-config`: validates the configuration and shows it resolved, with provenance. */
export function registerConfigCommands(program: Command, io: CliIo): void {
  program
    .command("check-config")
    .description("validate the experiment configuration and print it with every default filled in")
    .action(async (_options, command: Command) => {
      const global = command.optsWithGlobals<GlobalOptions>();
      const loaded = await commandConfig(io, global);
      if (global.json)
        writeJson(io, {
          valid: true,
          file: loaded.file,
          config: loaded.config,
          sources: loaded.sources,
          notes: loaded.notes,
        });
      else io.stdout(await describeConfig(loaded, io.cwd));
    });
}

/** The resolved configuration as YAML, each option annotated with where its value came from. */
export async function describeConfig(loaded: LoadedConfig, cwd: string): Promise<string> {
  const { stringify } = await import("yaml");
  const lines = [
    `configuration is valid: ${loaded.file}`,
    ...loaded.notes.map((note) => `note: ${note}`),
    "",
  ];
  const entries = Object.entries(loaded.sources) as [OptionName, ValueSource][];
  const blocks = entries.map(([key, source]) => ({
    text: stringify({ [key]: loaded.config[key] }, { lineWidth: 0 })
      .trimEnd()
      .split("\n"),
    note: `# ${sourceText(source, cwd)}`,
  }));
  // Notes line up after the values, and a value too long for the column keeps a gap before its note.
  const width = Math.min(58, Math.max(...blocks.map((b) => (b.text[0] ?? "").length)));
  for (const { text, note } of blocks) {
    const [first = "", ...rest] = text;
    lines.push(`${first.padEnd(width)}  ${note}`, ...rest);
  }
  return `${lines.join("\n")}\n`;
}

function sourceText(source: ValueSource, cwd: string): string {
  if (source.from === "default") return `default: ${source.detail}`;
  if (source.from === "environment") return `environment: ${source.variable}`;
  const file = relative(cwd, source.file) || source.file;
  return source.line === undefined ? `${file} (${source.key})` : `${file}:${source.line}`;
}
