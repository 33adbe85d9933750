import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { separatesAccounts } from "../lab/accounts.js";
import { labtestHome } from "../lab/home.js";
import { dottedKey, problemsFromIssues } from "../problems.js";
import { StateError } from "./errors.js";
import { protectState } from "./permissions.js";
import { STATE_PROVIDERS } from "./providers/index.js";
import { emptyStore, type StateStore } from "./store.js";

/** Where state lives, as state.json says. */
export interface OpenedState {
  store: StateStore;
  /** The state.json read, or undefined when there is none (empty state). */
  file: string | undefined;
  provider?: string;
  service?: string;
  /** State files outside the home that apps, running as accounts of their own, could read. */
  warnings: string[];
}

/** Where LabTest kept its state.json: read when the laboratory has none of its own. */
export const LABTEST_STATE_FILE = "/testing/state.json";

export interface StateOptions {
  /** `--state PATH`; else `LABTEST_STATE`; else `$LABTEST_HOME/state.json`; else LabTest's. */
  statePath?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** LabTest's state.json (default LABTEST_STATE_FILE). */
  legacyStatePath?: string;
}

const stateFileSchema = z.strictObject({
  provider: z.string().min(1),
  service: z.string().min(1),
  options: z.record(z.string(), z.unknown()).default({}),
});

/** Reads state.json and opens the store it names; no state.json at the default place is empty state. */
export async function openState(options: StateOptions = {}): Promise<OpenedState> {
  const env = options.env ?? process.env;
  const explicit = options.statePath ?? env.LABTEST_STATE;
  const candidates = explicit
    ? [resolve(options.cwd ?? process.cwd(), explicit)]
    : [join(labtestHome(env), "state.json"), options.legacyStatePath ?? LABTEST_STATE_FILE];
  const found = await firstStateFile(candidates, explicit !== undefined);
  if (!found) return { store: emptyStore, file: undefined, warnings: [] };
  const { file, text } = found;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new StateError(
      `${file} is not valid JSON: ${(error as Error).message}`,
      "correct the JSON syntax",
      { cause: error, where: file },
    );
  }
  const parsed = stateFileSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) throw invalid(file, parsed.error.issues, ["provider", "service", "options"]);
  const { provider, service } = parsed.data;
  const definition = STATE_PROVIDERS.find((d) => d.provider === provider && d.service === service);
  if (!definition) {
    const known = STATE_PROVIDERS.map((d) => `${d.provider}/${d.service}`).join(", ");
    throw new StateError(
      `${file}: unknown state provider/service ${provider}/${service}`,
      `use one of ${known}`,
      { where: file },
    );
  }
  const parsedOptions = definition.options.safeParse(parsed.data.options, { reportInput: true });
  if (!parsedOptions.success) {
    const shape = (definition.options as unknown as { shape?: Record<string, unknown> }).shape ?? {};
    throw invalid(file, parsedOptions.error.issues, Object.keys(shape), ["options"]);
  }
  const context = { directory: dirname(file), home: labtestHome(env) };
  const store = definition.open(parsedOptions.data, context);
  const warnings = separatesAccounts()
    ? await protectState(
        [file, ...(definition.localPaths?.(parsedOptions.data, context) ?? [])],
        context.home,
      )
    : [];
  return { store, file, provider, service, warnings };
}

/** The first of `files` that exists, read; a missing file is an error only when it was named. */
async function firstStateFile(
  files: string[],
  named: boolean,
): Promise<{ file: string; text: string } | undefined> {
  for (const file of files) {
    try {
      return { file, text: await readFile(file, "utf8") };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT" && !named) continue;
      throw new StateError(
        `cannot read ${file}: ${(error as Error).message}`,
        named ? "check --state or LABTEST_STATE" : undefined,
        { cause: error, where: file },
      );
    }
  }
  return undefined;
}

function invalid(
  file: string,
  issues: z.core.$ZodIssue[],
  known: string[],
  prefix: string[] = [],
): StateError {
  const problems = problemsFromIssues(issues, {
    keyName: (path) => dottedKey([...prefix, ...path]),
    lineOf: () => undefined,
    knownKeysAt: () => known,
  });
  return new StateError(
    `${file} is invalid: ${problems.map((p) => `${p.where}: ${p.what}`).join("; ")}`,
    problems
      .map((p) => p.fix)
      .filter(Boolean)
      .join("; "),
    { where: file },
  );
}
