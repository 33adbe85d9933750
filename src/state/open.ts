import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { labtestHome } from "../lab/home.js";
import { dottedKey, problemsFromIssues } from "../problems.js";
import { StateError } from "./errors.js";
import { STATE_PROVIDERS } from "./providers/index.js";
import { emptyStore, type StateStore } from "./store.js";

/** Where state lives, as state.json says. */
export interface OpenedState {
  store: StateStore;
  /** The state.json read, or undefined when there is none (empty state). */
  file: string | undefined;
  provider?: string;
  service?: string;
}

export interface StateOptions {
  /** `--state PATH`; else `LABTEST_STATE`; else `$LABTEST_HOME/state.json`. */
  statePath?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
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
  const file = explicit
    ? resolve(options.cwd ?? process.cwd(), explicit)
    : join(labtestHome(env), "state.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT" && !explicit)
      return { store: emptyStore, file: undefined };
    throw new StateError(
      `cannot read ${file}: ${(error as Error).message}`,
      explicit ? "check --state or LABTEST_STATE" : undefined,
      { cause: error },
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new StateError(
      `${file} is not valid JSON: ${(error as Error).message}`,
      "correct the JSON syntax",
      { cause: error },
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
    );
  }
  const parsedOptions = definition.options.safeParse(parsed.data.options, { reportInput: true });
  if (!parsedOptions.success) {
    const shape = (definition.options as unknown as { shape?: Record<string, unknown> }).shape ?? {};
    throw invalid(file, parsedOptions.error.issues, Object.keys(shape), ["options"]);
  }
  const store = definition.open(parsedOptions.data, { directory: dirname(file), home: labtestHome(env) });
  return { store, file, provider, service };
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
  );
}
