import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { type Document, parseDocument } from "yaml";
import { z } from "zod";
import { StateError } from "../errors.js";
import { validateKey } from "../keys.js";
import type { WritableStateStore } from "../store.js";
import { defineStateProvider } from "./definition.js";

/** `local`/`file`: one JSON or YAML document, a flat map from absolute key to value. */
export const localFile = defineStateProvider({
  provider: "local",
  service: "file",
  options: z.strictObject({ path: z.string().min(1) }),
  open: (options, context) => fileStore(resolve(context.directory, options.path)),
  localPaths: (options, context) => [resolve(context.directory, options.path)],
});

export function fileStore(path: string): WritableStateStore {
  const isJson = extname(path).toLowerCase() === ".json";

  async function load(missingOk: boolean): Promise<Document> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" && missingOk) return parseDocument("{}");
      throw new StateError(
        `cannot read the state file ${path}: ${(error as Error).message}`,
        "create it, or fix options.path in state.json",
        { cause: error, where: path },
      );
    }
    const doc = parseDocument(text);
    if (doc.errors.length > 0) {
      throw new StateError(
        `the state file ${path} does not parse: ${doc.errors[0]?.message.split("\n")[0]}`,
        "correct its JSON/YAML syntax",
        { where: path },
      );
    }
    const data: unknown = doc.toJS();
    if (data !== null && (typeof data !== "object" || Array.isArray(data))) {
      throw new StateError(
        `the state file ${path} is not a map from key to value`,
        'write it as {"/key": value, …}',
        { where: path },
      );
    }
    for (const key of Object.keys(data ?? {})) {
      try {
        validateKey(key);
      } catch (error) {
        throw new StateError(
          `the state file ${path} has an invalid key: ${(error as Error).message.split("\n")[0]}`,
          "use absolute keys such as /default",
          { cause: error, where: path },
        );
      }
    }
    return doc;
  }

  async function save(doc: Document): Promise<void> {
    const text = isJson ? `${JSON.stringify(doc.toJS() ?? {}, null, 2)}\n` : doc.toString();
    // The laboratory's account's only: state holds administrator URLs with their passwords.
    await writeFileAtomic(path, text, { mode: 0o600 });
  }

  return {
    async read(keys) {
      const data = ((await load(false)).toJS() ?? {}) as Record<string, unknown>;
      return new Map(keys.filter((k) => Object.hasOwn(data, k)).map((k) => [k, data[k]]));
    },
    async write(key, value) {
      const doc = await load(true);
      if (doc.contents === null) doc.contents = doc.createNode({});
      doc.set(key, value);
      await save(doc);
    },
    async remove(key) {
      const doc = await load(true);
      const existed = doc.delete(key);
      if (existed) await save(doc);
      return existed;
    },
    close: async () => undefined,
  };
}
