// Creating, updating and removing an experiment: the work done under its lock.
import { rm } from "node:fs/promises";
import { describeHolder } from "../lab/locks.js";
import type { ReleaseSource } from "./code-store.js";
import { type ExperimentsContext, experimentDirectory, experimentLock, type Project } from "./context.js";
import { describe, type ExperimentStatus } from "./details.js";
import { ExperimentError, withUndoFailure } from "./errors.js";
import { keepFailedOutput, outputKeeper, releaseOutputs } from "./logs.js";
import type { ExperimentRow } from "./registry.js";
import { checkOut, launch, verifyRoute } from "./release.js";
import type { Progress, StartedApp } from "./runtimes/runtime.js";
import { withOutputKeeper } from "./steps.js";

/** Who asks for a change of an experiment, and how long they wait while another command changes it. */
export interface Turn {
  /** A token's name, or the system user of a command run on the laboratory. */
  who?: string;
  /** How long to wait while another command holds the experiment, in ms (default: 10 minutes); 0: not at all. */
  waitMs?: number;
}

/**
 * Runs `work` holding the experiment's lock, for `turn.who` running `command`. A command that
 * finds the experiment held says once by whom and since when, and waits its turn. `work`'s
 * signal aborts when a delete cancels it.
 */
export function withExperimentLock<T>(
  lab: ExperimentsContext,
  experiment: { app: string; name: string },
  asked: Turn & { command: string; progress: Progress },
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const { app, name } = experiment;
  return lab.locks.withLock(experimentLock(app, name), work, {
    owner: { who: asked.who ?? "a labtest command", command: asked.command },
    subject: `experiment ${name} of ${app}`,
    ...(asked.waitMs !== undefined ? { waitMs: asked.waitMs } : {}),
    onWait: (holder) =>
      asked.progress(
        `waiting: experiment ${name} of ${app} is being changed by ${holder ? describeHolder(holder) : "another labtest command"}`,
      ),
  });
}

/** What create answers: the experiment, and whether it existed already (and was updated instead). */
export type CreatedExperiment = ExperimentStatus & { existed: boolean };

/**
 * Refuses a create of `branch` under the name of `existing`, another branch's experiment. A
 * create of the same branch is LabTest's idempotent create: it updates the experiment instead.
 */
export function assertSameBranch(existing: ExperimentRow, branch: string): void {
  if (existing.branch === branch) return;
  throw new ExperimentError(
    `experiment ${existing.name} of ${existing.app} exists already, of branch ${existing.branch}`,
    [
      {
        where: existing.name,
        what: `create of branch ${branch} under a name another branch's experiment has`,
        fix: `choose another name: labtest create ${branch} --name NAME (or labtest delete ${existing.name} first)`,
      },
    ],
  );
}

/**
 * Creates experiment `name` of `branch`, fetched from `source`: its record first, then checkout,
 * services, before_start_command, app, route. On any failure, everything made so far is removed;
 * what cannot be is named in the error, with how to remove it. An experiment of the branch that
 * exists already (a half-created one too) is updated instead, as LabTest's commands are idempotent.
 */
export async function createExperiment(
  lab: ExperimentsContext,
  project: Project,
  experiment: { name: string; branch: string; source: ReleaseSource },
  progress: Progress,
  turn: Turn = {},
): Promise<CreatedExperiment> {
  const config = project.config.config;
  const { name, branch, source } = experiment;
  const command = `labtest create --name ${name} ${branch}`;
  return withExperimentLock(
    lab,
    { app: config.app_name, name },
    { ...turn, command, progress },
    async (signal) => {
      // Checked again under the lock: another create may have made it since the caller's check.
      const existing = lab.registry.get(config.app_name, name);
      if (existing) {
        assertSameBranch(existing, branch);
        progress(`${name} exists already: updating it`);
        const updated = await updateExperiment(lab, project, existing, source, progress, signal);
        return { ...updated, existed: true };
      }
      const now = new Date().toISOString();
      const row: ExperimentRow = {
        app: config.app_name,
        name,
        branch,
        release: "",
        runtime: config.runtime,
        status: "creating",
        host: `creating:${config.app_name}/${name}`,
        port: 0,
        handle: "",
        checkout: "",
        createdAt: now,
        updatedAt: now,
      };
      // Recorded first: whatever happens next, delete (or a failed create) finds it all.
      if (!lab.registry.insert(row))
        throw new Error(`experiment ${name} of ${row.app} could not be recorded`);
      try {
        const release = await checkOut(lab, project, row, source, progress);
        // A delete cancelled this create: what it made so far is removed below, as a failed create's.
        signal.throwIfAborted();
        // The branch's configuration may choose another runtime: record it before it makes anything.
        lab.registry.update(row.app, name, {
          release: release.release,
          subject: release.subject,
          host: release.host,
          checkout: release.checkout,
          runtime: release.loaded.config.runtime,
        });
        const started = await withOutputKeeper(outputKeeper(lab, row, release), () =>
          launch(lab, release, undefined, progress),
        );
        signal.throwIfAborted();
        lab.registry.update(row.app, name, { status: "running", port: started.port, handle: started.handle });
        await verifyRoute(lab, release);
      } catch (error) {
        progress("failed: removing what was made");
        // What its app printed helps to find the cause; a create that cannot keep it still failed for its own reason.
        await keepFailedOutput(lab, row.app, name, error).catch(() => undefined);
        const undone = await removeExperiment(lab, row.app, name).then(
          () => undefined,
          (undoError: unknown) => undoError,
        );
        if (undone === undefined) throw error;
        throw withUndoFailure(error, {
          where: `experiment ${row.app}/${name}`,
          what: `removing what the failed create made failed too (${firstLine(undone)}): it is left half-created`,
          fix: `labtest delete ${name} removes it, or labtest gc once it is old enough`,
        });
      }
      await lab.failedOutputs.forget(row.app, name);
      return { ...(await describe(lab, lab.registry.get(row.app, name) ?? row)), existed: false };
    },
  );
}

/**
 * Moves an experiment to its branch's newest commit, fetched from `source`. The new release is
 * built, migrated and started beside the running one; the route switches once it answers. On
 * failure the running release stays as it was.
 */
export async function updateExperiment(
  lab: ExperimentsContext,
  project: Project,
  row: ExperimentRow,
  source: ReleaseSource,
  progress: Progress,
  signal: AbortSignal,
): Promise<ExperimentStatus> {
  const name = row.name;
  const release = await checkOut(lab, project, row, source, progress);
  let started: StartedApp;
  try {
    // A delete cancelled this update: its release is removed as a failed one's, and the delete
    // removes the rest (with every app of the experiment, the one just started too).
    signal.throwIfAborted();
    started = await withOutputKeeper(outputKeeper(lab, row, release), () =>
      launch(lab, release, row, progress),
    );
    signal.throwIfAborted();
  } catch (error) {
    progress("failed: the running release stays");
    const undone = await Promise.all([
      rm(release.checkout, { recursive: true, force: true }),
      releaseOutputs(lab, row).prune(row.checkout),
    ]).then(
      () => undefined,
      (undoError: unknown) => undoError,
    );
    if (undone === undefined) throw error;
    throw withUndoFailure(error, {
      where: release.checkout,
      what: `removing the release that failed failed too (${firstLine(undone)}); the running release stays`,
      fix: "labtest gc removes it once it is old enough",
    });
  }
  lab.registry.update(row.app, name, {
    status: "running",
    release: release.release,
    subject: release.subject,
    host: release.host,
    checkout: release.checkout,
    runtime: release.loaded.config.runtime,
    port: started.port,
    handle: started.handle,
  });
  progress("stopping the previous release");
  await withOutputKeeper(outputKeeper(lab, row, row), () => lab.runtimes[row.runtime].retire(row, started));
  await releaseOutputs(lab, row).prune(release.checkout);
  if (row.checkout !== release.checkout) await rm(row.checkout, { recursive: true, force: true });
  await verifyRoute(lab, release);
  const updated = lab.registry.get(row.app, name);
  return describe(lab, updated ?? row);
}

/**
 * Removes an experiment and all it has. Nothing is touched when other experiments share its
 * services. The app goes before its services (an app may crash and restart when they vanish);
 * every app of the experiment goes, recorded or not (a command may have died before recording it).
 */
export async function removeExperiment(lab: ExperimentsContext, app: string, name: string): Promise<void> {
  const row = lab.registry.get(app, name);
  await lab.services.assertUnshared(app, name);
  await lab.runtimes[row?.runtime ?? "local"].remove({ app, name });
  // Checked for sharers above, before the app went: the delete's one check.
  await lab.services.down(app, name, { force: true });
  await rm(experimentDirectory(lab.home, { app, name }), { recursive: true, force: true });
  lab.registry.remove(app, name);
}

/** The first line of an error's message: its summary. */
function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
}
