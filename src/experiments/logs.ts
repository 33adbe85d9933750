// What an experiment's app printed, and what labtest kept of its releases and failed creates.
import { join } from "node:path";
import { type ExperimentsContext, experimentDirectory, noExperiment } from "./context.js";
import { ExperimentError } from "./errors.js";
import { OutputGoneError, ReleaseOutputs } from "./failed-output.js";
import type { ExperimentRow } from "./registry.js";
import type { OutputKeeper } from "./steps.js";

/**
 * The app's output so far, after what labtest kept of its release and the one before (their
 * before_start_command's output, the replaced app's last output), each under a heading. When
 * the app's own output is gone (its container removed outside labtest), an OutputGoneError
 * carries what was kept.
 */
export async function appLogs(lab: ExperimentsContext, app: string, name: string): Promise<string> {
  const row = lab.registry.get(app, name);
  if (!row) {
    // A create that failed removed the experiment but kept what its app printed.
    const failed = await lab.failedOutputs.read(app, name);
    if (failed === undefined) throw noExperiment(app, name);
    return failed;
  }
  const kept = await keptOutput(lab, row);
  try {
    return `${kept}${await lab.runtimes[row.runtime].logs(row)}`;
  } catch (error) {
    if (error instanceof ExperimentError) throw new OutputGoneError(kept, error);
    throw error;
  }
}

/** Writes the app's output as it grows, from the start, until `signal` aborts. */
export async function followAppLogs(
  lab: ExperimentsContext,
  row: ExperimentRow,
  write: (text: string) => void,
  signal: AbortSignal,
): Promise<void> {
  write(await keptOutput(lab, row));
  await lab.runtimes[row.runtime].followLogs(row, write, signal);
}

/** What labtest kept of the experiment's releases, and the heading of its app's own output. */
async function keptOutput(lab: ExperimentsContext, row: ExperimentRow): Promise<string> {
  const kept = await releaseOutputs(lab, row).read(row.checkout);
  return `${kept}# labtest: release ${row.release.slice(0, 12)}: the app's output\n`;
}

/** Keeps what the app of a failing create printed, for `logs` once the experiment is removed. */
export async function keepFailedOutput(
  lab: ExperimentsContext,
  app: string,
  name: string,
  error: unknown,
): Promise<void> {
  const row = lab.registry.get(app, name);
  const output = row ? await lab.runtimes[row.runtime].logs(row).catch(() => "") : "";
  await lab.failedOutputs.keep(app, name, error, output);
}

/** Where the output of an experiment's releases is kept. */
export function releaseOutputs(
  lab: ExperimentsContext,
  experiment: { app: string; name: string },
): ReleaseOutputs {
  return new ReleaseOutputs(join(experimentDirectory(lab.home, experiment), "output"));
}

/** Keeps output (of steps, of a replaced app) with the release checked out at `release.checkout`. */
export function outputKeeper(
  lab: ExperimentsContext,
  experiment: { app: string; name: string },
  release: { checkout: string; release: string },
): OutputKeeper {
  const outputs = releaseOutputs(lab, experiment);
  return (section, output) => outputs.append(release.checkout, release.release, section, output);
}
