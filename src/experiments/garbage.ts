// What crashed commands left of experiments, found and removed by `labtest gc`.
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { type Removal, Sweep } from "../lab/garbage.js";
import { processesIn, processesUsing, stopProcess } from "../lab/processes.js";
import { type ExperimentsContext, experimentDirectory, experimentLock } from "./context.js";
import { removeExperiment } from "./lifecycle.js";
import type { ExperimentRow } from "./registry.js";
import { CHECKOUT_VARIABLE } from "./runtimes/local.js";

/**
 * Removes what crashed commands left, older than `graceMs`: experiments stuck half-created,
 * experiment directories no experiment owns, releases and apps of an update that did not
 * finish; then the services' leftovers. Returns what it removed and why, or with `dryRun`
 * what it would remove, removing nothing.
 */
export async function collectExperimentGarbage(
  lab: ExperimentsContext,
  graceMs: number,
  options: { dryRun?: boolean },
): Promise<Removal[]> {
  const sweep = new Sweep(graceMs, options.dryRun);
  for (const row of lab.registry.list()) {
    const lock = experimentLock(row.app, row.name);
    if (row.status !== "creating" || !sweep.old(Date.parse(row.updatedAt))) continue;
    if (await lab.locks.held(lock)) continue;
    await sweep.remove(`experiment ${row.app}/${row.name}`, "left half-created", () =>
      lab.locks.withLock(lock, async () => {
        if (lab.registry.get(row.app, row.name)?.status !== "creating") return false;
        await removeExperiment(lab, row.app, row.name);
      }),
    );
  }
  const root = join(lab.home, "experiments");
  for (const app of await readdir(root).catch(() => [] as string[]))
    for (const name of await readdir(join(root, app)).catch(() => [] as string[])) {
      const row = lab.registry.get(app, name);
      for (const path of await leftovers(lab, { app, name }, row)) {
        const modified = (await stat(path).catch(() => undefined))?.mtimeMs;
        if (modified === undefined || !sweep.old(modified)) continue;
        const [what, why] = row
          ? [`leftover ${path}`, `not ${app}/${name}'s current release (an update that did not finish)`]
          : [`experiment directory ${path}`, "no experiment owns it"];
        await sweep.remove(what, why, async () => {
          // What runs in it, or was started for it and left it (an app whose supervisor was killed).
          const pids = [...(await processesUsing(path)), ...(await processesIn(path, CHECKOUT_VARIABLE))];
          await Promise.all([...new Set(pids)].map((pid) => stopProcess(pid, 15_000)));
          await rm(path, { recursive: true, force: true });
        });
      }
    }
  const rows = lab.registry.list();
  for (const runtime of Object.values(lab.runtimes)) await runtime.collectGarbage(rows, sweep);
  return [...sweep.removals, ...(await lab.services.collectGarbage(graceMs, options))];
}

/**
 * What of an experiment's directory nothing accounts for: all of it without a record; else its
 * releases and supervisor specs other than the current ones (an update that did not finish).
 */
async function leftovers(
  lab: ExperimentsContext,
  experiment: { app: string; name: string },
  row: ExperimentRow | undefined,
): Promise<string[]> {
  const directory = experimentDirectory(lab.home, experiment);
  if (!row) return [directory];
  const releases = join(directory, "releases");
  const outputs = join(directory, "output");
  const current = new Set([row.checkout, releases, outputs, ...lab.runtimes[row.runtime].files(row)]);
  const paths = [
    ...(await readdir(releases).catch(() => [] as string[])).map((r) => join(releases, r)),
    ...(await readdir(directory)).map((f) => join(directory, f)),
  ];
  return paths.filter((path) => !current.has(path));
}
