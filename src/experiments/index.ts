import { join } from "node:path";
import { experimentName } from "../config/names.js";
import { type Docker, dockerEngine } from "../lab/docker.js";
import type { Removal } from "../lab/garbage.js";
import { describeHolder } from "../lab/locks.js";
import { Registry } from "../lab/registry.js";
import type { PublicBase } from "../lab/router.js";
import { Secrets } from "../secrets/index.js";
import { Services } from "../services/index.js";
import type { StateStore } from "../state/index.js";
import { checkBranch } from "./checkout.js";
import { type CodeSource, receiveBundle, releaseSource, storedHeads } from "./code-store.js";
import {
  type ExperimentsContext,
  experimentDirectory,
  experimentLock,
  experimentOrigin,
  noExperiment,
  type Project,
} from "./context.js";
import {
  describe,
  type ExperimentDetails,
  type ExperimentStatus,
  experimentDetails,
  listExperiments,
} from "./details.js";
import { ExperimentError } from "./errors.js";
import { FailedOutputs } from "./failed-output.js";
import { collectExperimentGarbage } from "./garbage.js";
import {
  assertSameBranch,
  type CreatedExperiment,
  createExperiment,
  removeExperiment,
  type Turn,
  updateExperiment,
  withExperimentLock,
} from "./lifecycle.js";
import { appLogs, followAppLogs } from "./logs.js";
import { reconcileExperiments } from "./reconcile.js";
import { ExperimentRegistry, type ExperimentRow } from "./registry.js";
import { appRelease, releaseConfiguration, revealedEnvironment } from "./release.js";
import { appRuntimes } from "./runtimes/index.js";
import type { ExecOutput, Progress } from "./runtimes/runtime.js";
import { withRerun } from "./steps.js";

export { MAX_BUNDLE_BYTES } from "../laboratory/protocol-constants.js";
export type { CodeSource } from "./code-store.js";
export type { Project } from "./context.js";
export type { AppAnswer, ExperimentDetails, ExperimentStatus } from "./details.js";
export { ExperimentError } from "./errors.js";
export { OutputGoneError } from "./failed-output.js";
export type { CreatedExperiment, Turn } from "./lifecycle.js";
export type { ExperimentRow } from "./registry.js";
export type { ExecOutput, Progress } from "./runtimes/runtime.js";

export interface ExperimentsOptions {
  home: string;
  state: StateStore;
  /**
   * The router's port (`create` starts the router on it) and how users reach the experiments,
   * for the URLs given out (default: the router, http on its port). Asked again each time: an
   * administrator can change them (`lab start`) while the laboratory stays open (`serve`).
   */
  router: () => { port: number; publicBase?: PublicBase };
  /** How long an app may take to answer its first request (default 60 s). */
  answerTimeoutMs?: number;
  /** The Docker Engine of the docker runtime (default: DOCKER_HOST or the local socket). */
  docker?: Docker;
}

/** What delete answers: the experiment deleted, or null and why there was nothing to delete. */
export type Deletion = { deleted: string } | { deleted: null; note: string };

/** What a client sends for a release besides its project: where its code is, and its initial data. */
export interface Delivery {
  code?: CodeSource;
  /** The contents of the configuration's initial_data files, by service. */
  initialData?: Record<string, string>;
}

/**
 * Experiments on the embedded laboratory: a checkout of a branch, its services, its app (a
 * supervised process or a container), and a route from its host name to the app. Each job
 * (release, lifecycle, details, logs, reconcile, gc) is a module of its own; this is what the
 * laboratory asks of them, each command after the registry was reconciled with what runs.
 */
export class Experiments {
  readonly registry: ExperimentRegistry;
  readonly services: Services;
  private readonly lab: ExperimentsContext;
  private reconciliation: Promise<unknown> | undefined;

  constructor(options: ExperimentsOptions) {
    const { home, state, router, answerTimeoutMs } = options;
    const secrets = new Secrets({ state, home });
    const docker = options.docker ?? dockerEngine();
    const locks = new Registry(home);
    this.registry = new ExperimentRegistry(join(home, "experiments.db"));
    this.services = new Services({ home, state, secrets, docker });
    this.lab = {
      home,
      get routerPort() {
        return router().port;
      },
      get publicBase() {
        const { port, publicBase } = router();
        return publicBase ?? { scheme: "http", port };
      },
      registry: this.registry,
      services: this.services,
      locks,
      runtimes: appRuntimes({ home, laboratory: locks, docker, answerTimeoutMs }),
      secrets,
      state,
      failedOutputs: new FailedOutputs(home),
    };
  }

  /**
   * Creates an experiment of `branch` (named after it unless `name` is given): checkout,
   * services, before_start_command, app, route. On any failure, everything made so far is removed.
   * The code comes from where `code` says (default: code_repo_url); `initialData`, the client's
   * initial_data files, serve when the branch has no configuration of its own. An experiment of
   * the branch that exists already is updated instead (`existed` says so); one of another
   * branch under that name is an error.
   */
  async create(
    project: Project,
    request: { branch: string; name?: string } & Delivery,
    progress: Progress = () => undefined,
    turn: Turn = {},
  ): Promise<CreatedExperiment> {
    const { branch } = request;
    const loaded = project.config;
    const app = loaded.config.app_name;
    const name = experimentName(request.name ?? branch);
    await this.reconciled();
    const existing = this.registry.get(app, name);
    // Before anything is fetched: the name is another branch's.
    if (existing) assertSameBranch(existing, branch);
    this.lab.runtimes[loaded.config.runtime].check(loaded.config, loaded.file);
    progress(`checking branch ${branch}`);
    const source = await this.source(app, branch, loaded.config.code_repo_url, request);
    await checkBranch(source.repository, branch);
    // A failed step's error says what to run again: the create as it was asked for.
    const again = ["labtest create", branch, request.name && `--name ${request.name}`];
    return withRerun(again.filter(Boolean).join(" "), () =>
      createExperiment(this.lab, project, { name, branch, source }, progress, turn),
    );
  }

  /**
   * Moves an experiment to its branch's newest commit, keeping its services and data. The new
   * release is built, migrated (before_start_command) and started beside the running one; the
   * route switches once it answers. On failure the running release stays as it was.
   */
  async update(
    project: Project,
    name: string,
    progress: Progress = () => undefined,
    turn: Turn = {},
    delivery: Delivery = {},
  ): Promise<ExperimentStatus> {
    await this.reconciled();
    const loaded = project.config;
    const row = this.registry.get(loaded.config.app_name, name);
    if (!row)
      throw new ExperimentError(`no experiment ${name} of ${loaded.config.app_name}`, [
        { where: name, what: "not on this laboratory", fix: `labtest create --name ${name} BRANCH` },
      ]);
    return withRerun(`labtest update ${name}`, () =>
      withExperimentLock(
        this.lab,
        row,
        { ...turn, command: `labtest update ${name}`, progress },
        async (signal) => {
          // A delete may have removed it while this command waited.
          const current = this.recorded(row.app, name);
          progress(`checking branch ${row.branch}`);
          const source = await this.source(row.app, row.branch, loaded.config.code_repo_url, delivery);
          await checkBranch(source.repository, row.branch);
          return updateExperiment(this.lab, project, current, source, progress, signal);
        },
      ),
    );
  }

  /** The branch heads (branch → commit) of the app's repository on this laboratory, which clients push into. */
  codeHeads(app: string): Promise<Record<string, string>> {
    return storedHeads(this.lab.home, app);
  }

  /** Fetches a client's bundle of its branches into the app's repository here; returns the heads it then has. */
  receiveCode(app: string, bundle: Buffer): Promise<Record<string, string>> {
    return receiveBundle(this.lab.home, app, bundle);
  }

  /**
   * Deletes an experiment: its app, services (tenants, dedicated servers), checkout and route.
   * A create or update of it that runs meanwhile is cancelled (it undoes what it made), and the
   * delete takes its turn after it. An experiment that does not exist is nothing to delete (as
   * LabTest's commands are idempotent): the answer says so, naming the app's experiments, so that
   * a mistyped name or app shows.
   */
  async delete(
    app: string,
    name: string,
    progress: Progress = () => undefined,
    turn: Turn = {},
  ): Promise<Deletion> {
    await this.reconciled();
    if (!this.registry.get(app, name)) return { deleted: null, note: this.nothingToDelete(app, name) };
    // Sharers refuse a delete: checked before an update is cancelled for nothing (and again under the lock).
    await this.lab.services.assertUnshared(app, name);
    const command = `labtest delete ${name}`;
    const cancelled = await this.lab.locks.cancelLock(experimentLock(app, name), {
      who: turn.who ?? "a labtest command",
      command,
    });
    if (cancelled) progress(`cancelling what ${describeHolder(cancelled)} does`);
    await withExperimentLock(this.lab, { app, name }, { ...turn, command, progress }, () =>
      removeExperiment(this.lab, app, name),
    );
    return { deleted: name };
  }

  /** The line a delete of an experiment that does not exist answers with. */
  private nothingToDelete(app: string, name: string): string {
    const others = this.registry.list(app).map((row) => row.name);
    const known = others.length
      ? `${app}'s experiments here: ${others.join(", ")}`
      : `${app} has no experiments on this laboratory`;
    return `no experiment ${name} of ${app}: nothing to delete (${known})`;
  }

  /**
   * Removes what crashed commands left, older than `graceMs` (see collectExperimentGarbage);
   * with `dryRun`, only says what it would remove.
   */
  async collectGarbage(graceMs: number, options: { dryRun?: boolean } = {}): Promise<Removal[]> {
    // What runs without a record is an experiment whose record was lost, not garbage.
    await this.reconciled();
    return collectExperimentGarbage(this.lab, graceMs, options);
  }

  async list(app?: string): Promise<ExperimentStatus[]> {
    await this.reconciled();
    return listExperiments(this.lab, app);
  }

  async status(app: string, name: string): Promise<ExperimentStatus | undefined> {
    await this.reconciled();
    const row = this.registry.get(app, name);
    return row && describe(this.lab, row);
  }

  /**
   * An experiment in full, as `status NAME` shows it: with its services' endpoints, how its app
   * answers `healthPath` now, and the last lines it printed.
   */
  async details(app: string, name: string, healthPath = "/"): Promise<ExperimentDetails | undefined> {
    await this.reconciled();
    const row = this.registry.get(app, name);
    return row && experimentDetails(this.lab, row, healthPath);
  }

  /** The app's output so far, after what labtest kept of its releases (see appLogs). */
  logs(app: string, name: string): Promise<string> {
    return appLogs(this.lab, app, name);
  }

  /** Writes the app's output as it grows, from the start, until `signal` aborts. */
  followLogs(app: string, name: string, write: (text: string) => void, signal: AbortSignal): Promise<void> {
    return followAppLogs(this.lab, this.recorded(app, name), write, signal);
  }

  /** Reveals the experiment's secrets in this process, so that what it prints masks them. */
  async revealSecrets(project: Project, name: string): Promise<void> {
    const row = this.registry.get(project.config.config.app_name, name);
    if (!row?.checkout) return;
    await revealedEnvironment(this.lab, (await releaseConfiguration(project, row.checkout)).loaded);
  }

  /**
   * Runs `argv` where the experiment's app runs (its checkout, or its container) in its
   * environment (LabTest's `test`); resolves to its exit code. When `signal` aborts, the command
   * and what it started are stopped.
   */
  async exec(
    project: Project,
    name: string,
    argv: string[],
    output: ExecOutput = { stdout: process.stdout, stderr: process.stderr },
    signal?: AbortSignal,
  ): Promise<number> {
    const row = this.recorded(project.config.config.app_name, name);
    const current = await releaseConfiguration(project, row.checkout);
    const identity = { ...row, url: experimentOrigin(row.host, this.lab.publicBase) };
    const release = await appRelease(this.lab, identity, current.appDirectory, current.loaded);
    return this.lab.runtimes[row.runtime].exec(row, release, argv, output, signal);
  }

  /**
   * Records the experiments whose apps run but have no record (the registry was lost or
   * damaged): the runtimes are the truth. Returns them as `app/name`.
   */
  reconcile(): Promise<string[]> {
    return reconcileExperiments(this.lab);
  }

  /** Where an experiment's releases (and a local app's log and supervisor specs) live. */
  directory(experiment: { app: string; name: string }): string {
    return experimentDirectory(this.lab.home, experiment);
  }

  async close(): Promise<void> {
    await this.services.close();
    this.registry.close();
  }

  /** Where a release of `branch` comes from, as the client delivered it. */
  private source(app: string, branch: string, configured: string | null, delivery: Delivery) {
    return releaseSource(this.lab.home, app, branch, delivery.code, configured, delivery.initialData ?? {});
  }

  /** Reconciles once for this instance (a command's lifetime), before the registry is trusted. */
  private reconciled(): Promise<unknown> {
    this.reconciliation ??= this.reconcile();
    return this.reconciliation;
  }

  /** The experiment's record; an error when there is none. */
  private recorded(app: string, name: string): ExperimentRow {
    const row = this.registry.get(app, name);
    if (!row) throw noExperiment(app, name);
    return row;
  }
}
