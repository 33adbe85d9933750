import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parse as parseIni } from "ini";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Scalar } from "yaml";
import { ConfigError } from "../errors.js";
import { configError } from "./report.js";

export type ConfigFormat = "yaml" | "json" | "ini";

/** How many nodes aliases may expand to, all told: the yaml package's default. */
const MAX_ALIAS_COUNT = 100;

/** The section every configuration file keeps labtest's options under. */
export const SECTION = "labtest";

/** A configuration file read in its own format, with the labtest section picked out. */
export interface ConfigDocument {
  file: string;
  format: ConfigFormat;
  /** The labtest section as plain data; undefined when the file has no such section. */
  section: unknown;
  /** The line of a key path inside the section, where the format keeps lines. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
}

const EXTENSIONS: Record<string, ConfigFormat> = {
  ".yml": "yaml",
  ".yaml": "yaml",
  ".json": "json",
  ".cfg": "ini",
  ".ini": "ini",
};

/** The format a file name implies, or undefined for an extension labtest does not read. */
export function formatOf(file: string): ConfigFormat | undefined {
  return EXTENSIONS[extname(file).toLowerCase()];
}

export const SUPPORTED_EXTENSIONS = Object.keys(EXTENSIONS);

/** Reads and parses a configuration file; a syntax error is a ConfigError naming file and line. */
export async function readConfigDocument(file: string, format: ConfigFormat): Promise<ConfigDocument> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(
      `cannot read configuration file ${file}: ${(error as Error).message}`,
      [
        {
          where: file,
          what: (error as NodeJS.ErrnoException).code ?? "unreadable",
          fix: "check the path (--config) and that this user may read the file",
        },
      ],
      { cause: error },
    );
  }
  switch (format) {
    case "yaml":
      return parseYaml(file, text);
    case "json":
      return parseJson(file, text);
    case "ini":
      return {
        file,
        format,
        section: (parseIni(text) as Record<string, unknown>)[SECTION],
        lineOf: () => undefined,
      };
  }
}

function parseYaml(file: string, text: string): ConfigDocument {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const notYaml = `configuration file ${file} is not valid YAML`;
  if (doc.errors.length > 0) {
    throw configError(
      notYaml,
      doc.errors.map((e) => ({
        where: `line ${lineCounter.linePos(e.pos[0]).line}`,
        what: e.message.split("\n")[0] ?? e.message,
        fix: "correct the YAML syntax",
      })),
    );
  }
  let data: unknown;
  try {
    // The yaml package refuses aliases that would expand to a huge document (a "billion laughs").
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    throw configError(
      notYaml,
      [
        {
          where: file,
          what: `too many aliases (*name) to expand: ${(error as Error).message}`,
          fix: "write the values out instead of nesting aliases of aliases",
        },
      ],
      { cause: error },
    );
  }
  // The line of the deepest key (or list item) of the path that the document has.
  const lineOf = (path: readonly PropertyKey[]): number | undefined => {
    let node: unknown = doc.contents;
    let offset: number | undefined;
    for (const segment of [SECTION, ...path]) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
        if (!pair) break;
        offset = (pair.key as Scalar).range?.[0] ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === "number") {
        node = node.items[segment];
        offset = (node as { range?: number[] } | undefined)?.range?.[0] ?? offset;
      } else {
        break;
      }
    }
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
  };
  return { file, format: "yaml", section: sectionOf(data), lineOf };
}

function parseJson(file: string, text: string): ConfigDocument {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw configError(`configuration file ${file} is not valid JSON`, [
      { where: file, what: (error as Error).message, fix: "correct the JSON syntax" },
    ]);
  }
  return { file, format: "json", section: sectionOf(data), lineOf: () => undefined };
}

function sectionOf(data: unknown): unknown {
  if (data === null || typeof data !== "object" || Array.isArray(data)) return undefined;
  return Object.hasOwn(data, SECTION) ? (data as Record<string, unknown>)[SECTION] : undefined;
}
