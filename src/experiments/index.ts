import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import pMap from "p-map";
import { gitBranch } from "../config/git.js";
import { experimentName, hostLabel } from "../config/names.js";
import { expandPattern } from "../config/patterns.js";
import type { LoadedConfig } from "../config/resolve.js";
import type { Problem } from "../errors.js";
import { type Docker, dockerEngine } from "../lab/docker.js";
import { type Removal, Sweep } from "../lab/garbage.js";
import { processesIn, processesUsing, stopProcess } from "../lab/processes.js";
import { Registry } from "../lab/registry.js";
import { experimentUrl } from "../lab/router.js";
import { ensureRoute } from "../lab/router-control.js";
import { Secrets } from "../secrets/index.js";
import { serviceEnvironment } from "../services/env.js";
import { experimentServices, type ServiceStatus, Services } from "../services/index.js";
import type { StateStore } from "../state/index.js";
import { branchSource, checkBranch, checkout } from "./checkout.js";
import { type ExperimentIdentity, experimentEnvironment } from "./environment.js";
import { ExperimentError } from "./errors.js";
import { FailedOutputs, OutputGoneError, ReleaseOutputs } from "./failed-output.js";
import { ExperimentRegistry, type ExperimentRow } from "./registry.js";
import { appRuntimes, type Runtime } from "./runtimes/index.js";
import type {
  AppHealth,
  AppRelease,
  AppRuntime,
  ExecOutput,
  Progress,
  StartedApp,
} from "./runtimes/runtime.js";
import {
  branchConfiguration,
  configSubdirectory,
  lastLines,
  type OutputKeeper,
  withOutputKeeper,
  withRerun,
} from "./steps.js";

export { ExperimentError } from "./errors.js";
export { OutputGoneError } from "./failed-output.js";
export type { ExperimentRow } from "./registry.js";
export type { ExecOutput, Progress } from "./runtimes/runtime.js";

export interface ExperimentsOptions {
  home: string;
  state: StateStore;
  /** The router's port: URLs are printed with it, and `create` starts the router on it. */
  routerPort: number;
  /** How long an app may take to answer its first request (default 60 s). */
  answerTimeoutMs?: number;
  /** The Docker Engine of the docker runtime (default: DOCKER_HOST or the local socket). */
  docker?: Docker;
}

/** An experiment as `list` and `status` show it. */
export interface ExperimentStatus extends Omit<ExperimentRow, "status"> {
  /** The record's status, or for a recorded running app what it does now. */
  status: ExperimentRow["status"] | AppHealth["state"];
  /** How often the app died since its release started, and how it last ended. */
  restarts: number;
  lastExit: string | null;
  url: string;
  services: { name: string; kind: string; provider: string; provisionType: string }[];
  /** Why the app or a service does not serve now (`where`: "app" or the service's name). */
  problems: Problem[];
}

/** How an app answered a request just now: its status and time, or why it did not. */
export type AppAnswer = { path: string; status: number; ms: number } | { path: string; error: string };

/** An experiment as `status NAME` shows it. */
export interface ExperimentDetails extends ExperimentStatus {
  /** Its services, with where the app and the laboratory host reach them. */
  services: ServiceStatus[];
  /** How its app answers its health check path now. */
  answer: AppAnswer;
  /** The last lines its app printed. */
  recentOutput: string[];
}

/** How many lines of the app's output `status` shows. */
const RECENT_LINES = 10;

/** How the app on `port` of this machine answers `path` now (any status is an answer), within 2 s. */
async function answerOf(port: number, path: string): Promise<AppAnswer> {
  const started = performance.now();
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      signal: AbortSignal.timeout(2000),
      redirect: "manual",
    });
    await response.body?.cancel();
    return { path, status: response.status, ms: Math.round(performance.now() - started) };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    const timedOut = (error as Error).name === "TimeoutError";
    return { path, error: timedOut ? "no answer within 2 s" : (cause ?? (error as Error).message) };
  }
}

/** A checked-out commit of an experiment's branch, with the configuration it carries. */
interface Release {
  identity: ExperimentIdentity;
  release: string;
  subject: string;
  host: string;
  checkout: string;
  appDirectory: string;
  loaded: LoadedConfig;
}

function alreadyExists(app: string, name: string): ExperimentError {
  return new ExperimentError(`experiment ${name} of ${app} exists already`, [
    {
      where: name,
      what: "create makes a new experiment",
      fix: `labtest update ${name} moves it to the newest commit; or choose another --name`,
    },
  ]);
}

/** Experiments `list` looks at at once (their apps' state, files and processes). */
const EXPERIMENTS_AT_ONCE = 8;

function noExperiment(app: string, name: string): ExperimentError {
  return new ExperimentError(`no experiment ${name} of ${app}`, [
    { where: name, what: "not on this laboratory", fix: "labtest list shows the experiments" },
  ]);
}

function experimentLock(app: string, name: string): string {
  return `experiment-${app}-${name}`;
}

/**
 * Experiments on the embedded laboratory: a checkout of a branch, its services, its app (a
 * supervised process or a container), and a route from its host name to the app.
 */
export class Experiments {
  readonly registry: ExperimentRegistry;
  readonly services: Services;
  /** Serialises commands on one experiment across processes (and tells gc whose command died). */
  private readonly locks: Registry;
  private readonly runtimes: Record<Runtime, AppRuntime>;
  private readonly secrets: Secrets;
  private readonly failedOutputs: FailedOutputs;
  private reconciliation: Promise<unknown> | undefined;

  constructor(private readonly options: ExperimentsOptions) {
    this.registry = new ExperimentRegistry(join(options.home, "experiments.db"));
    this.secrets = new Secrets({ state: options.state, home: options.home });
    this.failedOutputs = new FailedOutputs(options.home);
    const docker = options.docker ?? dockerEngine();
    this.services = new Services({ home: options.home, state: options.state, secrets: this.secrets, docker });
    this.locks = new Registry(options.home);
    const { home, answerTimeoutMs } = options;
    this.runtimes = appRuntimes({ home, laboratory: this.locks, docker, answerTimeoutMs });
  }

  /**
   * Creates an experiment of `branch` (default: the current one): checkout, services,
   * before_start_command, app, route. On any failure, everything made so far is removed.
   */
  async create(
    loaded: LoadedConfig,
    request: { branch?: string; name?: string } = {},
    progress: Progress = () => undefined,
  ): Promise<ExperimentStatus> {
    const config = loaded.config;
    const branch = request.branch ?? (await gitBranch(loaded.directory));
    if (!branch)
      throw new ExperimentError("which branch?", [
        {
          where: "BRANCH",
          what: `not given, and ${loaded.directory} is not on a branch`,
          fix: "labtest create BRANCH",
        },
      ]);
    const name = experimentName(request.name ?? branch);
    await this.reconciled();
    if (this.registry.get(config.app_name, name)) throw alreadyExists(config.app_name, name);
    this.runtimes[config.runtime].check(config, loaded.file);
    progress(`checking branch ${branch}`);
    const source = await branchSource(loaded, branch);
    await checkBranch(source, branch);

    // A failed step's error says what to run again: the create as it was asked for.
    const again = ["labtest create", request.branch, request.name && `--name ${request.name}`];
    return withRerun(again.filter(Boolean).join(" "), () =>
      this.createLocked(loaded, name, branch, source, progress),
    );
  }

  private async createLocked(
    loaded: LoadedConfig,
    name: string,
    branch: string,
    source: string,
    progress: Progress,
  ): Promise<ExperimentStatus> {
    const config = loaded.config;
    return this.locks.withLock(experimentLock(config.app_name, name), async () => {
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
      // A create of the same name by another command may have won the race since the check above.
      if (!this.registry.insert(row)) throw alreadyExists(config.app_name, name);
      try {
        const release = await this.checkOut(loaded, row, source, progress);
        // The branch's configuration may choose another runtime: record it before it makes anything.
        this.registry.update(row.app, name, {
          release: release.release,
          subject: release.subject,
          host: release.host,
          checkout: release.checkout,
          runtime: release.loaded.config.runtime,
        });
        const started = await withOutputKeeper(this.outputKeeper(row, release), () =>
          this.launch(release, undefined, progress),
        );
        this.registry.update(row.app, name, {
          status: "running",
          port: started.port,
          handle: started.handle,
        });
        await this.verifyRoute(release);
      } catch (error) {
        progress("failed: removing what was made");
        await this.keepFailedOutput(row.app, name, error).catch(() => undefined);
        await this.remove(row.app, name).catch(() => undefined);
        throw error;
      }
      await this.failedOutputs.forget(row.app, name);
      return this.status(row.app, name) as Promise<ExperimentStatus>;
    });
  }

  /**
   * Moves an experiment to its branch's newest commit, keeping its services and data. The new
   * release is built, migrated (before_start_command) and started beside the running one; the
   * route switches once it answers. On failure the running release stays as it was.
   */
  async update(
    loaded: LoadedConfig,
    name: string,
    progress: Progress = () => undefined,
  ): Promise<ExperimentStatus> {
    await this.reconciled();
    const row = this.registry.get(loaded.config.app_name, name);
    if (!row)
      throw new ExperimentError(`no experiment ${name} of ${loaded.config.app_name}`, [
        { where: name, what: "not on this laboratory", fix: `labtest create --name ${name} BRANCH` },
      ]);
    return withRerun(`labtest update ${name}`, () =>
      this.locks.withLock(experimentLock(row.app, name), () => this.updateLocked(loaded, row, progress)),
    );
  }

  private async updateLocked(
    loaded: LoadedConfig,
    row: ExperimentRow,
    progress: Progress,
  ): Promise<ExperimentStatus> {
    const name = row.name;
    progress(`checking branch ${row.branch}`);
    const source = await branchSource(loaded, row.branch);
    await checkBranch(source, row.branch);
    const release = await this.checkOut(loaded, row, source, progress);
    let started: StartedApp;
    try {
      started = await withOutputKeeper(this.outputKeeper(row, release), () =>
        this.launch(release, row, progress),
      );
    } catch (error) {
      progress("failed: the running release stays");
      await rm(release.checkout, { recursive: true, force: true });
      await this.releaseOutputs(row).prune(row.checkout);
      throw error;
    }
    this.registry.update(row.app, name, {
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
    await withOutputKeeper(this.outputKeeper(row, row), () =>
      this.runtimes[row.runtime].retire(row, started),
    );
    await this.releaseOutputs(row).prune(release.checkout);
    if (row.checkout !== release.checkout) await rm(row.checkout, { recursive: true, force: true });
    await this.verifyRoute(release);
    return this.status(row.app, name) as Promise<ExperimentStatus>;
  }

  /** An experiment's URL is given out once it serves the release, through this laboratory's router. */
  private verifyRoute(release: Release): Promise<void> {
    const { home, routerPort } = this.options;
    return ensureRoute(home, routerPort, release.host, release.loaded.config.health_check_path);
  }

  /** Clones the experiment's branch from `source` into a new release directory and reads its configuration there. */
  private async checkOut(
    loaded: LoadedConfig,
    row: ExperimentRow,
    source: string,
    progress: Progress,
  ): Promise<Release> {
    const config = loaded.config;
    const directory = this.directory(row);
    await mkdir(join(directory, "releases"), { recursive: true, mode: 0o700 });
    progress(`checking out ${row.branch}`);
    const checkoutDirectory = join(directory, "releases", `${Date.now()}`);
    const { commit: release, subject } = await checkout(source, row.branch, checkoutDirectory);
    const host = `${hostLabel(expandPattern(config.host_name_pattern, { app_name: config.app_name, experiment: row.name, branch: row.branch, release }))}.${config.test_domain}`;
    const clash = this.registry.byHost(host);
    if (clash && (clash.app !== row.app || clash.name !== row.name))
      throw new ExperimentError(`host name ${host} is taken by experiment ${clash.app}/${clash.name}`, [
        {
          where: "labtest.host_name_pattern",
          what: "two experiments would answer at one URL",
          fix: "choose another --name, or include {experiment} in host_name_pattern",
        },
      ]);
    const appDirectory = join(checkoutDirectory, await configSubdirectory(loaded));
    return {
      identity: { app: row.app, name: row.name, branch: row.branch, release, host, url: this.origin(host) },
      release,
      subject,
      host,
      checkout: checkoutDirectory,
      appDirectory,
      loaded: await branchConfiguration(loaded, appDirectory, checkoutDirectory),
    };
  }

  /**
   * The runtime builds the release while its services come up; then it runs
   * before_start_command and starts the release until it answers.
   */
  private async launch(
    release: Release,
    previous: ExperimentRow | undefined,
    progress: Progress,
  ): Promise<StartedApp> {
    const { identity, appDirectory, loaded } = release;
    // What the branch's own configuration names is the branch's to read, and nothing else.
    const fromBranch = loaded.file.startsWith(`${release.checkout}/`);
    const runtime = this.runtimes[loaded.config.runtime];
    runtime.check(loaded.config, loaded.file);
    // Secrets are revealed first: one that cannot be is an error before anything starts.
    const configured = await this.revealedEnvironment(loaded);
    progress("bringing services up");
    const building = experimentEnvironment(
      identity,
      async (explicit, known) => serviceEnvironment({}, explicit, known),
      configured,
    ).then((env) =>
      runtime.prepare(
        { identity, appDirectory, config: loaded.config, configFile: loaded.file, env },
        previous,
        progress,
      ),
    );
    const [services, prepared] = await Promise.allSettled([
      this.services.up(experimentServices(loaded, identity.name, fromBranch ? release.checkout : undefined)),
      building,
    ]);
    if (prepared.status === "rejected") throw prepared.reason;
    if (services.status === "rejected") {
      await runtime.discard(prepared.value, previous);
      throw services.reason;
    }
    const { env } = await this.appRelease(identity, appDirectory, loaded, configured);
    return runtime.launch({ ...prepared.value, env }, previous, progress);
  }

  /** The configured environment with its ENC[…] values revealed. */
  private revealedEnvironment(loaded: LoadedConfig): Promise<Record<string, string>> {
    return this.secrets.reveal(
      loaded.config.environment,
      (key) => `${loaded.file}: labtest.environment.${key}`,
    );
  }

  /** What a runtime needs of a running release: where it is, its configuration and its whole environment. */
  private async appRelease(
    identity: ExperimentIdentity,
    appDirectory: string,
    loaded: LoadedConfig,
    configured?: Record<string, string>,
  ): Promise<AppRelease> {
    const env = await experimentEnvironment(
      identity,
      (explicit, known) => this.services.environment(identity.app, identity.name, explicit, { known }),
      configured ?? (await this.revealedEnvironment(loaded)),
    );
    return { identity, appDirectory, config: loaded.config, configFile: loaded.file, env };
  }

  /** Deletes an experiment: its app, services (tenants, dedicated servers), checkout and route. */
  async delete(app: string, name: string): Promise<void> {
    await this.reconciled();
    this.recorded(app, name);
    await this.locks.withLock(experimentLock(app, name), () => this.remove(app, name));
  }

  /**
   * Removes what crashed commands left, older than `graceMs`: experiments stuck half-created,
   * experiment directories no experiment owns, releases and apps of an update that did not
   * finish; then the services' leftovers. Returns what it removed and why, or with `dryRun`
   * what it would remove, removing nothing.
   */
  async collectGarbage(graceMs: number, options: { dryRun?: boolean } = {}): Promise<Removal[]> {
    // What runs without a record is an experiment whose record was lost, not garbage.
    await this.reconciled();
    const sweep = new Sweep(graceMs, options.dryRun);
    for (const row of this.registry.list()) {
      const lock = experimentLock(row.app, row.name);
      if (row.status !== "creating" || !sweep.old(Date.parse(row.updatedAt))) continue;
      if (await this.locks.held(lock)) continue;
      await sweep.remove(`experiment ${row.app}/${row.name}`, "left half-created", () =>
        this.locks.withLock(lock, async () => {
          if (this.registry.get(row.app, row.name)?.status !== "creating") return false;
          await this.remove(row.app, row.name);
        }),
      );
    }
    const root = join(this.options.home, "experiments");
    for (const app of await readdir(root).catch(() => [] as string[]))
      for (const name of await readdir(join(root, app)).catch(() => [] as string[])) {
        const row = this.registry.get(app, name);
        for (const path of await this.leftovers({ app, name }, row)) {
          const modified = (await stat(path).catch(() => undefined))?.mtimeMs;
          if (modified === undefined || !sweep.old(modified)) continue;
          const [what, why] = row
            ? [`leftover ${path}`, `not ${app}/${name}'s current release (an update that did not finish)`]
            : [`experiment directory ${path}`, "no experiment owns it"];
          await sweep.remove(what, why, async () => {
            for (const pid of [...(await processesUsing(path)), ...(await processesIn(path))])
              await stopProcess(pid, 15_000);
            await rm(path, { recursive: true, force: true });
          });
        }
      }
    const rows = this.registry.list();
    for (const runtime of Object.values(this.runtimes)) await runtime.collectGarbage(rows, sweep);
    return [...sweep.removals, ...(await this.services.collectGarbage(graceMs, options))];
  }

  async list(app?: string): Promise<ExperimentStatus[]> {
    await this.reconciled();
    // The services' records are read once for all; the apps are looked at a few at a time, as
    // each look opens files or sockets and a laboratory may have hundreds of experiments.
    const byExperiment = new Map<string, ServiceStatus[]>();
    for (const s of await this.services.list(app)) {
      const key = `${s.app}/${s.experiment}`;
      byExperiment.set(key, [...(byExperiment.get(key) ?? []), s]);
    }
    return pMap(
      this.registry.list(app),
      (row) => this.describe(row, byExperiment.get(`${row.app}/${row.name}`) ?? []),
      { concurrency: EXPERIMENTS_AT_ONCE },
    );
  }

  async status(app: string, name: string): Promise<ExperimentStatus | undefined> {
    await this.reconciled();
    const row = this.registry.get(app, name);
    return row && this.describe(row);
  }

  /**
   * An experiment in full, as `status NAME` shows it: with its services' endpoints, how its app
   * answers `healthPath` now, and the last lines it printed.
   */
  async details(app: string, name: string, healthPath = "/"): Promise<ExperimentDetails | undefined> {
    await this.reconciled();
    const row = this.registry.get(app, name);
    if (!row) return undefined;
    const services = await this.services.list(app, name, { ping: true });
    const [status, answer, output] = await Promise.all([
      this.describe(row, services),
      row.status === "running" ? answerOf(row.port, healthPath) : { path: healthPath, error: "not running" },
      // What it printed is for the user to read; its status is what matters here.
      this.runtimes[row.runtime].logs(row).catch(() => ""),
    ]);
    const recentOutput = lastLines(output, RECENT_LINES).split("\n").filter(Boolean);
    return { ...status, services, answer, recentOutput };
  }

  /**
   * The app's output so far, after what labtest kept of its release and the one before (their
   * before_start_command's output, the replaced app's last output), each under a heading. When
   * the app's own output is gone (its container removed outside labtest), an OutputGoneError
   * carries what was kept.
   */
  async logs(app: string, name: string): Promise<string> {
    const row = this.registry.get(app, name);
    if (!row) {
      // A create that failed removed the experiment but kept what its app printed.
      const failed = await this.failedOutputs.read(app, name);
      if (failed === undefined) throw noExperiment(app, name);
      return failed;
    }
    const kept = await this.keptOutput(row);
    try {
      return `${kept}${await this.runtimes[row.runtime].logs(row)}`;
    } catch (error) {
      if (error instanceof ExperimentError) throw new OutputGoneError(kept, error);
      throw error;
    }
  }

  /** What labtest kept of the experiment's releases, and the heading of its app's own output. */
  private async keptOutput(row: ExperimentRow): Promise<string> {
    const kept = await this.releaseOutputs(row).read(row.checkout);
    return `${kept}# labtest: release ${row.release.slice(0, 12)}: the app's output\n`;
  }

  /** Keeps what the app of a failing create printed, for `logs` once the experiment is removed. */
  private async keepFailedOutput(app: string, name: string, error: unknown): Promise<void> {
    const row = this.registry.get(app, name);
    const output = row ? await this.runtimes[row.runtime].logs(row).catch(() => "") : "";
    await this.failedOutputs.keep(app, name, error, output);
  }

  /** Where the output of an experiment's releases is kept. */
  private releaseOutputs(experiment: { app: string; name: string }): ReleaseOutputs {
    return new ReleaseOutputs(join(this.directory(experiment), "output"));
  }

  /** Keeps output (of steps, of a replaced app) with the release checked out at `release.checkout`. */
  private outputKeeper(
    experiment: { app: string; name: string },
    release: { checkout: string; release: string },
  ): OutputKeeper {
    const outputs = this.releaseOutputs(experiment);
    return (section, output) => outputs.append(release.checkout, release.release, section, output);
  }

  /** Writes the app's output as it grows, from the start, until `signal` aborts. */
  async followLogs(
    app: string,
    name: string,
    write: (text: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const row = this.recorded(app, name);
    write(await this.keptOutput(row));
    await this.runtimes[row.runtime].followLogs(row, write, signal);
  }

  /** The experiment's record; an error when there is none. */
  private recorded(app: string, name: string): ExperimentRow {
    const row = this.registry.get(app, name);
    if (!row) throw noExperiment(app, name);
    return row;
  }

  /** Reveals the experiment's secrets in this process, so that what it prints masks them. */
  async revealSecrets(loaded: LoadedConfig, name: string): Promise<void> {
    const row = this.registry.get(loaded.config.app_name, name);
    if (!row?.checkout) return;
    await this.revealedEnvironment((await this.checkedOut(loaded, row)).loaded);
  }

  /** Where a recorded experiment's app runs from in its checkout, and its configuration there. */
  private async checkedOut(
    loaded: LoadedConfig,
    row: ExperimentRow,
  ): Promise<{ appDirectory: string; loaded: LoadedConfig }> {
    const appDirectory = join(row.checkout, await configSubdirectory(loaded));
    return { appDirectory, loaded: await branchConfiguration(loaded, appDirectory, row.checkout) };
  }

  /**
   * Runs `argv` where the experiment's app runs (its checkout, or its container) in its
   * environment (LabTest's `test`); resolves to its exit code.
   */
  async exec(
    loaded: LoadedConfig,
    name: string,
    argv: string[],
    output: ExecOutput = { stdout: process.stdout, stderr: process.stderr },
  ): Promise<number> {
    const row = this.recorded(loaded.config.app_name, name);
    const current = await this.checkedOut(loaded, row);
    const identity = { ...row, url: this.origin(row.host) };
    const release = await this.appRelease(identity, current.appDirectory, current.loaded);
    return this.runtimes[row.runtime].exec(row, release, argv, output);
  }

  /**
   * Records the experiments whose apps run but have no record (the registry was lost or
   * damaged): the runtimes are the truth. Returns them as `app/name`.
   */
  async reconcile(): Promise<string[]> {
    const recorded: string[] = [];
    for (const runtime of Object.values(this.runtimes))
      for (const row of await runtime.discover()) {
        if (!row.app || !row.name || this.registry.get(row.app, row.name)) continue;
        const checkout = row.checkout || (await this.newestRelease(row));
        if (this.registry.insert({ ...row, checkout })) recorded.push(`${row.app}/${row.name}`);
      }
    return recorded;
  }

  /** Reconciles once for this instance (a command's lifetime), before the registry is trusted. */
  private reconciled(): Promise<unknown> {
    this.reconciliation ??= this.reconcile();
    return this.reconciliation;
  }

  /** The newest checkout of an experiment, for an app that does not say where it runs from. */
  private async newestRelease(experiment: { app: string; name: string }): Promise<string> {
    const releases = join(this.directory(experiment), "releases");
    const [newest] = (await readdir(releases).catch(() => [] as string[])).sort().reverse();
    return newest ? join(releases, newest) : "";
  }

  async close(): Promise<void> {
    await this.services.close();
    this.registry.close();
  }

  /**
   * Removes an experiment and all it has. Nothing is touched when other experiments share its
   * services. The app goes before its services (an app may crash and restart when they vanish);
   * every app of the experiment goes, recorded or not (a command may have died before recording it).
   */
  private async remove(app: string, name: string): Promise<void> {
    const row = this.registry.get(app, name);
    await this.services.assertUnshared(app, name);
    await this.runtimes[row?.runtime ?? "local"].remove({ app, name });
    await this.services.down(app, name);
    await rm(this.directory({ app, name }), { recursive: true, force: true });
    this.registry.remove(app, name);
  }

  /**
   * What of an experiment's directory nothing accounts for: all of it without a record; else its
   * releases and supervisor specs other than the current ones (an update that did not finish).
   */
  private async leftovers(
    experiment: { app: string; name: string },
    row: ExperimentRow | undefined,
  ): Promise<string[]> {
    const directory = this.directory(experiment);
    if (!row) return [directory];
    const releases = join(directory, "releases");
    const outputs = join(directory, "output");
    const current = new Set([row.checkout, releases, outputs, ...this.runtimes[row.runtime].files(row)]);
    const paths = [
      ...(await readdir(releases).catch(() => [] as string[])).map((r) => join(releases, r)),
      ...(await readdir(directory)).map((f) => join(directory, f)),
    ];
    return paths.filter((path) => !current.has(path));
  }

  /** Where the router serves the experiment at `host`: scheme, host and port. */
  private origin(host: string): string {
    return new URL(experimentUrl(host, this.options.routerPort)).origin;
  }

  /** Where an experiment's releases (and a local app's log and supervisor specs) live. */
  directory(experiment: { app: string; name: string }): string {
    return join(this.options.home, "experiments", experiment.app, experiment.name);
  }

  private async describe(row: ExperimentRow, recorded?: ServiceStatus[]): Promise<ExperimentStatus> {
    const health: AppHealth =
      row.status === "running"
        ? await this.runtimes[row.runtime].health(row)
        : { state: "stopped", restarts: 0, lastExit: null };
    const recordedServices = recorded ?? (await this.services.list(row.app, row.name));
    const services = recordedServices.map((s) => ({
      name: s.name,
      kind: s.kind,
      provider: s.provider,
      provisionType: s.provisionType,
    }));
    const problems = [
      ...(health.problem ? [{ where: "app", what: health.problem }] : []),
      ...recordedServices.flatMap((s) => (s.problem ? [{ where: s.name, what: s.problem }] : [])),
    ];
    return {
      ...row,
      status: row.status === "running" ? health.state : row.status,
      restarts: health.restarts,
      lastExit: health.lastExit,
      url: experimentUrl(row.host, this.options.routerPort),
      services,
      problems,
    };
  }
}
