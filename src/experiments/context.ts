import { join } from "node:path";
import type { LoadedConfig } from "../config/resolve.js";
import type { Registry } from "../lab/registry.js";
import { experimentUrl, type PublicBase } from "../lab/router.js";
import type { Secrets } from "../secrets/index.js";
import type { Services } from "../services/index.js";
import type { StateStore } from "../state/index.js";
import { ExperimentError } from "./errors.js";
import type { FailedOutputs } from "./failed-output.js";
import type { ExperimentRegistry } from "./registry.js";
import type { Runtime } from "./runtimes/names.js";
import type { AppRuntime } from "./runtimes/runtime.js";

/**
 * The project as the client read it: its configuration, and where that sits in its repository
 * (`""` at the top; an app in a subdirectory of a larger repository runs from the same place in
 * its checkouts). The laboratory never reads the client's working copy itself.
 */
export interface Project {
  config: LoadedConfig;
  subdirectory: string;
}

/** What the jobs of the experiments (create, update, logs, gc, …) share on one laboratory. */
export interface ExperimentsContext {
  home: string;
  /** The router's port, where an experiment is checked to answer through it. */
  routerPort: number;
  /** How users reach the experiments: URLs are given out with it. */
  publicBase: PublicBase;
  registry: ExperimentRegistry;
  services: Services;
  /** Serialises commands on one experiment across processes (and tells gc whose command died). */
  locks: Registry;
  runtimes: Record<Runtime, AppRuntime>;
  secrets: Secrets;
  /** The laboratory's state: what its administrator allows experiments. */
  state: StateStore;
  failedOutputs: FailedOutputs;
}

/** Where an experiment's releases (and a local app's log and supervisor specs) live. */
export function experimentDirectory(home: string, experiment: { app: string; name: string }): string {
  return join(home, "experiments", experiment.app, experiment.name);
}

/** The lock that serialises commands on one experiment. */
export function experimentLock(app: string, name: string): string {
  return `experiment-${app}-${name}`;
}

/** Where users reach the experiment at `host`: scheme, host and port. */
export function experimentOrigin(host: string, base: PublicBase): string {
  return new URL(experimentUrl(host, base)).origin;
}

export function noExperiment(app: string, name: string): ExperimentError {
  return new ExperimentError(`no experiment ${name} of ${app}`, [
    { where: name, what: "not on this laboratory", fix: "labtest list shows the experiments" },
  ]);
}
