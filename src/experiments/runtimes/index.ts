import { join } from "node:path";
import type { Docker } from "../../lab/docker.js";
import type { Registry } from "../../lab/registry.js";
import { DockerRuntime } from "./docker.js";
import { LocalRuntime } from "./local.js";
import type { Runtime } from "./names.js";
import type { AppRuntime } from "./runtime.js";

export { RUNTIMES, type Runtime } from "./names.js";

/** What a runtime may use of the laboratory it runs apps on. */
export interface RuntimeContext {
  home: string;
  /** The laboratory: its id labels what runtimes make elsewhere, its locks guard what they share. */
  laboratory: Registry;
  docker: Docker;
  /** How long an app may take to answer its first request (default 60 s). */
  answerTimeoutMs?: number;
}

/**
 * Every app runtime by the name configurations give it: a new runtime is one module and one line
 * here (and its name in names.ts, which the compiler holds to this list).
 */
const RUNTIME_MODULES = {
  local: ({ home, answerTimeoutMs }) => new LocalRuntime(join(home, "experiments"), answerTimeoutMs),
  docker: ({ docker, laboratory, answerTimeoutMs }) => new DockerRuntime(docker, laboratory, answerTimeoutMs),
} satisfies Record<Runtime, (context: RuntimeContext) => AppRuntime>;

/** The runtimes of a laboratory, one of each kind. */
export function appRuntimes(context: RuntimeContext): Record<Runtime, AppRuntime> {
  const entries = Object.entries(RUNTIME_MODULES).map(([name, make]) => [name, make(context)]);
  return Object.fromEntries(entries) as Record<Runtime, AppRuntime>;
}
