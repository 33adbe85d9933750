import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { StateError } from "../errors.js";
import { validateKey } from "../keys.js";
import { parseValue, type WritableStateStore } from "../store.js";
import { defineStateProvider } from "./definition.js";

/** `local`/`directory`: a tree of files, key `/a/b/c` ↔ file `a/b/c`, `a/b/c.json` or `a/b/c.yml`. */
export const localDirectory = defineStateProvider({
  provider: "local",
  service: "directory",
  options: z.strictObject({ path: z.string().min(1) }),
  open: (options, context) => directoryStore(resolve(context.directory, options.path)),
  localPaths: (options, context) => [resolve(context.directory, options.path)],
});

/** The files a key may live in, in order of preference, and how each is parsed. */
const VARIANTS: ReadonlyArray<readonly [string, (text: string) => unknown]> = [
  ["", parseValue],
  [".json", parseValue],
  [".yml", parseYamlValue],
  [".yaml", parseYamlValue],
];

function parseYamlValue(text: string): unknown {
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}

export function directoryStore(root: string): WritableStateStore {
  // Keys are validated (no "..", no empty segments), so the path stays under root.
  const base = (key: string) => join(root, ...validateKey(key).slice(1).split("/"));

  async function findFile(
    key: string,
  ): Promise<{ file: string; parse: (text: string) => unknown } | undefined> {
    for (const [suffix, parse] of VARIANTS) {
      const file = base(key) + suffix;
      const info = await stat(file).catch(() => undefined);
      if (info?.isFile()) return { file, parse };
    }
    return undefined;
  }

  return {
    async read(keys) {
      const rootInfo = await stat(root).catch(() => undefined);
      if (!rootInfo?.isDirectory()) {
        throw new StateError(
          `the state directory ${root} does not exist`,
          "create it, or fix options.path in state.json",
          { where: root },
        );
      }
      const entries = await Promise.all(
        keys.map(async (key) => {
          const found = await findFile(key);
          const text = found ? (await readFile(found.file, "utf8")).replace(/\r?\n$/, "") : undefined;
          return found && text !== undefined ? ([key, found.parse(text)] as const) : undefined;
        }),
      );
      return new Map(entries.filter((e) => e !== undefined));
    },
    async write(key, value) {
      const existing = await findFile(key);
      const file = existing?.file ?? base(key);
      // The laboratory's account's only, as the file store's: values may hold passwords.
      await mkdir(dirname(file), { recursive: true, mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
        throw new StateError(
          `cannot set ${key}: a parent key is a value, not a directory (${error.message})`,
          "unset the parent key first",
          { where: key },
        );
      });
      await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    },
    async remove(key) {
      const existing = await findFile(key);
      if (existing) await rm(existing.file);
      return existing !== undefined;
    },
    close: async () => undefined,
  };
}
