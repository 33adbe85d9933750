import { relative } from "node:path";
import type { Command } from "commander";
import { stringify } from "yaml";
import { type LoadedConfig, loadConfig, type OptionName, type ValueSource } from "../config/resolve.js";
import { type CliIo, type GlobalOptions, writeJson } from "./io.js";

/** `labtest check-config`: validates the configuration and shows it resolved, with provenance. */
export function registerConfigCommands(program: Command, io: CliIo): void {
  program
    .command("check-config")
    .description("validate the experiment configuration and print it with every default filled in")
    .action(async (_options, command: Command) => {
      const global = command.optsWithGlobals<GlobalOptions>();
      const loaded = await loadConfig({
        cwd: io.cwd,
        ...(global.config ? { configPath: global.config } : {}),
      });
      if (global.json)
        writeJson(io, {
          valid: true,
          file: loaded.file,
          config: loaded.config,
          sources: loaded.sources,
          notes: loaded.notes,
        });
      else io.stdout(describeConfig(loaded, io.cwd));
    });
}

/** The resolved configuration as YAML, each option annotated with where its value came from. */
export function describeConfig(loaded: LoadedConfig, cwd: string): string {
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
  const file = relative(cwd, source.file) || source.file;
  return source.line === undefined ? `${file} (${source.key})` : `${file}:${source.line}`;
}
