// Rebuilding the registry from what runs: the runtimes are the truth, the registry a record.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { type ExperimentsContext, experimentDirectory } from "./context.js";

/**
 * Records the experiments whose apps run but have no record (the registry was lost or
 * damaged). Returns them as `app/name`.
 */
export async function reconcileExperiments(
  lab: Pick<ExperimentsContext, "home" | "registry" | "runtimes">,
): Promise<string[]> {
  const recorded: string[] = [];
  for (const runtime of Object.values(lab.runtimes))
    for (const row of await runtime.discover()) {
      if (!row.app || !row.name || lab.registry.get(row.app, row.name)) continue;
      const checkout = row.checkout || (await newestRelease(lab, row));
      if (lab.registry.insert({ ...row, checkout })) recorded.push(`${row.app}/${row.name}`);
    }
  return recorded;
}

/** The newest checkout of an experiment, for an app that does not say where it runs from. */
async function newestRelease(
  lab: Pick<ExperimentsContext, "home">,
  experiment: { app: string; name: string },
): Promise<string> {
  const releases = join(experimentDirectory(lab.home, experiment), "releases");
  const [newest] = (await readdir(releases).catch(() => [] as string[])).sort().reverse();
  return newest ? join(releases, newest) : "";
}
