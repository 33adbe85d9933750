import { spawn } from "node:child_process";
import { chmod, mkdir, open, readdir, readFile, rm, stat } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import getPort from "get-port";
import writeFileAtomic from "write-file-atomic";
import {
  type AppAccount,
  ensureAppAccount,
  handOver,
  removeAppAccount,
  separatesAccounts,
  sweepAppAccounts,
} from "../../lab/accounts.js";
import type { Sweep } from "../../lab/garbage.js";
import {
  commandLines,
  processesIn,
  processesUsing,
  processGroup,
  processIdentity,
  stopProcess,
} from "../../lab/processes.js";
import { listeningPorts } from "../../lab/sockets.js";
import { commandArgv } from "../command.js";
import { baseEnvironment, rowFromEnvironment } from "../environment.js";
import { ExperimentError } from "../errors.js";
import type { ExperimentRow } from "../registry.js";
import { runStep, waitForAnswer } from "../steps.js";
import { readSupervisedState } from "../supervised.js";
import { unstarted } from "../unstarted.js";
import type {
  AppHealth,
  AppRelease,
  AppRuntime,
  ExecOutput,
  PreparedRelease,
  Progress,
  StartedApp,
} from "./runtime.js";

/** The supervisor's compiled entry point (the same file serves an installed labtest and the tests, after a build). */
const SUPERVISOR = fileURLToPath(new URL("../../../dist/experiments/supervisor.js", import.meta.url));

type Experiment = { app: string; name: string };

/**
 * The variable naming the release's checkout in its app's environment: how labtest finds an app
 * whose supervisor was killed once it left its checkout (a daemon changes to /).
 */
export const CHECKOUT_VARIABLE = "LABTEST_CHECKOUT";

/**
 * Apps as processes on the laboratory host: `start_command` in the checkout with `PORT`, under a
 * detached supervisor that restarts it when it dies and outlives labtest. Output goes to one log
 * per experiment, across releases.
 */
export class LocalRuntime implements AppRuntime {
  readonly name = "local";

  constructor(
    /** Where the experiments' directories are, `<app>/<name>` below it. */
    private readonly root: string,
    private readonly answerTimeoutMs?: number,
  ) {}

  check(config: AppRelease["config"], file: string): void {
    if (!config.start_command)
      throw new ExperimentError("nothing to start: start_command is not set", [
        {
          where: `${file}: labtest.start_command`,
          what: "the local runtime runs the app with it",
          fix: "set start_command, e.g. node server.js (or runtime: docker to run the image's CMD)",
        },
      ]);
  }

  async prepare(
    release: AppRelease,
    _previous: ExperimentRow | undefined,
    progress: Progress,
  ): Promise<PreparedRelease> {
    const { appDirectory, config } = release;
    this.check(config, release.configFile);
    const account = await this.account(release.identity);
    if (account) await this.handOverCheckout(appDirectory, account);
    if (config.app_build_command) {
      progress("running app_build_command");
      await runStep(
        "app_build_command",
        config.app_build_command,
        appDirectory,
        await this.appEnvironment(release.identity, release.env, account),
        account,
      );
    }
    return { ...release, image: null };
  }

  async discard(): Promise<void> {
    // A local release is its checkout, which the experiment removes.
  }

  async launch(
    release: PreparedRelease,
    _previous: ExperimentRow | undefined,
    progress: Progress,
  ): Promise<StartedApp> {
    const { identity, appDirectory, config } = release;
    const account = await this.account(identity);
    const env = await this.appEnvironment(identity, release.env, account);
    if (config.before_start_command) {
      progress("running before_start_command");
      await runStep("before_start_command", config.before_start_command, appDirectory, env, account);
    }
    progress("starting the app");
    const port = await getPort({ host: "127.0.0.1" });
    const appEnv = { ...env, ...runningAppVariables(port, appDirectory) };
    const log = this.logFile(identity);
    const specFile = this.specFile(identity, port);
    const stateFile = supervisedStateFile(specFile);
    // Where this start's output begins in the experiment's log, which spans releases.
    const startOfOutput = (await stat(log).catch(() => undefined))?.size ?? 0;
    await writeFileAtomic(
      specFile,
      JSON.stringify({
        argv: commandArgv("start_command", config.start_command ?? "", appEnv),
        cwd: appDirectory,
        env: appEnv,
        log,
        state: stateFile,
        ...(account ? { uid: account.uid, gid: account.gid } : {}),
      }),
      // Readable by the owner only: it holds the environment.
      { mode: 0o600 },
    );
    const output = await open(log, "a", 0o600);
    const supervisor = spawn(process.execPath, [SUPERVISOR, specFile], {
      detached: true,
      stdio: ["ignore", output.fd, output.fd],
    });
    await output.close();
    supervisor.unref();
    const pid = supervisor.pid ?? 0;
    progress(`waiting for the app to answer on port ${port}`);
    try {
      await waitForAnswer(
        port,
        {
          path: config.health_check_path,
          running: async () =>
            (await supervising(pid, specFile)) && !(await readSupervisedState(stateFile))?.lastExit,
          output: () => readFrom(log, startOfOutput),
          listening: async () => {
            const app = (await readSupervisedState(stateFile))?.pid;
            return app ? listeningPorts(app, await processGroup(app)) : [];
          },
          starter: "start_command",
          appPort: port,
        },
        this.answerTimeoutMs,
      );
    } catch (error) {
      await this.stopRelease(pid, specFile, checkoutOf(appDirectory));
      throw error;
    }
    return { port, handle: String(pid) };
  }

  retire(previous: ExperimentRow): Promise<void> {
    return this.stopRelease(
      Number(previous.handle),
      this.specFile(previous, previous.port),
      previous.checkout,
    );
  }

  /**
   * Stops a release: its supervisor (which stops the app), then its app if its supervisor was
   * killed (see releaseApps), and its spec, which holds the environment.
   */
  private async stopRelease(pid: number, specFile: string, checkout: string): Promise<void> {
    await stopSupervisor(pid, specFile);
    await stopAll(await releaseApps(checkout, supervisedStateFile(specFile)), 10_000);
    await Promise.all([specFile, supervisedStateFile(specFile)].map((file) => rm(file, { force: true })));
  }

  async health(row: ExperimentRow): Promise<AppHealth> {
    const spec = this.specFile(row, row.port);
    const state = await readSupervisedState(supervisedStateFile(spec));
    const health = {
      restarts: Math.max(0, (state?.starts ?? 1) - 1),
      lastExit: state?.lastExit?.exit ?? null,
    };
    if (await supervising(Number(row.handle), spec))
      return { ...health, state: state?.running === false ? "restarting" : "running" };
    const orphans = await releaseApps(row.checkout, supervisedStateFile(spec));
    return { ...health, state: orphans.length > 0 ? "orphaned" : "stopped" };
  }

  logs(row: ExperimentRow): Promise<string> {
    return readFile(this.logFile(row), "utf8").catch(() => "");
  }

  async followLogs(row: ExperimentRow, write: (text: string) => void, signal: AbortSignal): Promise<void> {
    const file = this.logFile(row);
    let offset = 0;
    while (!signal.aborted) {
      const handle = await open(file, "r").catch(() => undefined);
      if (handle) {
        try {
          const { size } = await handle.stat();
          if (size > offset) {
            const { buffer, bytesRead } = await handle.read(
              Buffer.alloc(size - offset),
              0,
              size - offset,
              offset,
            );
            offset += bytesRead;
            write(buffer.subarray(0, bytesRead).toString("utf8"));
          }
        } finally {
          await handle.close();
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async exec(
    row: ExperimentRow,
    release: AppRelease,
    argv: string[],
    output: ExecOutput,
    signal?: AbortSignal,
  ): Promise<number> {
    const [program = "", ...args] = argv;
    const account = await this.account(row);
    // What the app sees, its checkout marker included: what exec starts goes with the experiment.
    const env: Record<string, string> = {
      ...(await this.appEnvironment(row, release.env, account)),
      ...runningAppVariables(row.port, release.appDirectory),
    };
    const child = execa(program, args, {
      cwd: release.appDirectory,
      env,
      ...(account ? { uid: account.uid, gid: account.gid } : {}),
      extendEnv: false,
      stdin: "inherit",
      reject: false,
      // A process group of its own, which a stop ends whole: the command and what it started.
      detached: true,
    });
    child.stdout?.pipe(output.stdout, { end: false });
    child.stderr?.pipe(output.stderr, { end: false });
    let stopping: Promise<void> | undefined;
    const stop = () => {
      // A negative pid is the process group (kill(2)); the group may end by itself meanwhile.
      if (child.pid) stopping = stopProcess(-child.pid, EXEC_GRACE_MS);
    };
    if (signal?.aborted) stop();
    signal?.addEventListener("abort", stop, { once: true });
    const result = await child.finally(() => signal?.removeEventListener("abort", stop));
    await stopping;
    const failure =
      result.exitCode === undefined &&
      (await unstarted(program, result.code, env.PATH, release.appDirectory));
    if (failure) throw failure;
    return result.exitCode ?? 1;
  }

  files(row: ExperimentRow): string[] {
    const spec = this.specFile(row, row.port);
    return [spec, supervisedStateFile(spec), this.logFile(row), this.accountHome(row)];
  }

  async remove(experiment: Experiment): Promise<void> {
    const directory = this.directory(experiment);
    await stopAll(await processesUsing(`${directory}/`), 15_000);
    // Apps whose supervisor was killed: in or started for any of its checkouts, or in a group
    // a supervisor recorded.
    const groups = (await readdir(directory).catch(() => [] as string[]))
      .filter((entry) => /^supervisor-\d+\.state\.json$/.test(entry))
      .map((entry) => recordedGroup(join(directory, entry)));
    const orphans = await Promise.all([processesIn(directory, CHECKOUT_VARIABLE), ...groups]);
    await stopAll([...new Set(orphans.flat())], 10_000);
    // Whatever still runs as the experiment's account (an app its supervisor lost) goes with it.
    if (separatesAccounts()) await removeAppAccount(this.root, experiment);
  }

  /** Apps whose supervisor runs, from their specs (the environment names the experiment). */
  async discover(): Promise<ExperimentRow[]> {
    const found = new Map<string, ExperimentRow>();
    const list = (directory: string) => readdir(directory).catch(() => [] as string[]);
    const specs: string[] = [];
    for (const app of await list(this.root))
      for (const name of await list(join(this.root, app)))
        for (const entry of await list(join(this.root, app, name)))
          if (/^supervisor-\d+\.json$/.test(entry)) specs.push(join(this.root, app, name, entry));
    // One look at the process table for all specs: a spec's supervisor has it as an argument.
    const processes = [...(await commandLines())];
    for (const file of specs) {
      const [pid] = processes.filter(([, line]) => line.split("\0").includes(file)).map(([p]) => p);
      const spec = pid ? await supervisedSpec(file) : undefined;
      // Gone since it was listed: another command replaced or removed that release.
      if (!spec) continue;
      const { cwd, env, written } = spec;
      const row = rowFromEnvironment(env, { runtime: "local", handle: String(pid), since: written });
      // While an update runs two releases, the newer one is the experiment's.
      const key = `${row.app}/${row.name}`;
      const other = found.get(key);
      if (!other || other.updatedAt < written) found.set(key, { ...row, checkout: checkoutOf(cwd) });
    }
    return [...found.values()];
  }

  async collectGarbage(rows: ExperimentRow[], sweep: Sweep): Promise<void> {
    // Files of a local app live in the experiment's directory, which the experiments sweep; its
    // account lives in the system's account database.
    if (!separatesAccounts()) return;
    await sweepAppAccounts(this.root, new Set(rows.map((row) => `${row.app}/${row.name}`)), sweep);
  }

  /**
   * The account the experiment's app runs as, when the laboratory can give it one (it runs as
   * root); otherwise the app runs as whoever runs labtest.
   */
  private async account(experiment: Experiment): Promise<AppAccount | undefined> {
    if (!separatesAccounts()) return undefined;
    return ensureAppAccount(this.root, experiment, this.accountHome(experiment));
  }

  /**
   * Gives the release's checkout to the app's account; the directories above it let the account
   * pass through to it (0711) without listing or reading anything else.
   */
  private async handOverCheckout(appDirectory: string, account: AppAccount): Promise<void> {
    const [app = "", name = "", releases = "", stamp = ""] = relative(this.root, appDirectory).split(sep);
    const experiment = join(this.root, app, name);
    const passage = [
      dirname(this.root),
      this.root,
      join(this.root, app),
      experiment,
      join(experiment, releases),
    ];
    for (const directory of passage) await chmod(directory, 0o711);
    const checkout = join(experiment, releases, stamp);
    await handOver(checkout, account);
    await chmod(checkout, 0o700);
  }

  /**
   * What the app's commands run with: labtest's base with HOME (and USER) of the app's account,
   * the experiment's variables over it. Without an account (labtest is not root) the app runs as
   * labtest's account, and its HOME is still the experiment's, never the invoker's.
   */
  private async appEnvironment(
    experiment: Experiment,
    env: Record<string, string>,
    account: AppAccount | undefined,
  ): Promise<Record<string, string>> {
    if (account)
      return { ...baseEnvironment(account.home), USER: account.name, LOGNAME: account.name, ...env };
    const home = this.accountHome(experiment);
    await mkdir(home, { recursive: true, mode: 0o700 });
    return { ...baseEnvironment(home), ...env };
  }

  private accountHome(experiment: Experiment): string {
    return join(this.directory(experiment), "home");
  }

  private directory(experiment: Experiment): string {
    return join(this.root, experiment.app, experiment.name);
  }

  /** The app's output, across releases. */
  private logFile(experiment: Experiment): string {
    return join(this.directory(experiment), "app.log");
  }

  /** The supervisor spec of the app listening on `port` (one per release while two run). */
  private specFile(experiment: Experiment, port: number): string {
    return join(this.directory(experiment), `supervisor-${port}.json`);
  }
}

/** How long a stopped exec's command has to end after SIGTERM, as long as a stopped app has. */
const EXEC_GRACE_MS = 10_000;

/** What a running app has beyond its release's environment: its port, and the checkout it runs from. */
function runningAppVariables(port: number, appDirectory: string): Record<string, string> {
  return { PORT: String(port), [CHECKOUT_VARIABLE]: checkoutOf(appDirectory) };
}

/** Where the supervisor of a spec records how its app fares. */
function supervisedStateFile(specFile: string): string {
  return specFile.replace(/\.json$/, ".state.json");
}

/** A supervisor's spec: where its app runs, with what environment, written when; undefined once removed. */
async function supervisedSpec(
  file: string,
): Promise<{ cwd: string; env: Record<string, string>; written: string } | undefined> {
  try {
    const { cwd, env } = JSON.parse(await readFile(file, "utf8")) as {
      cwd: string;
      env: Record<string, string>;
    };
    return { cwd, env, written: (await stat(file)).mtime.toISOString() };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** A file's content from byte `offset` on. */
async function readFrom(file: string, offset: number): Promise<string> {
  const handle = await open(file, "r");
  try {
    const { size } = await handle.stat();
    const { buffer, bytesRead } = await handle.read(
      Buffer.alloc(Math.max(0, size - offset)),
      0,
      size - offset,
      offset,
    );
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
}

/** Whether `pid` is still the supervisor of that spec (a pid can be reused after a reboot). */
async function supervising(pid: number, specFile: string): Promise<boolean> {
  return (await processIdentity(pid))?.argv.includes(specFile) ?? false;
}

/** The release checkout a path is in (`<experiment>/releases/<stamp>`); "" when it is in none. */
function checkoutOf(path: string): string {
  return /^(.*\/releases\/[^/]+)/.exec(path)?.[1] ?? "";
}

/**
 * The app of a release whose supervisor is gone: what works in its `checkout` or was started for
 * it (CHECKOUT_VARIABLE), and the process group its supervisor last started it in (an app that
 * left its checkout and dropped its environment, with its children).
 */
async function releaseApps(checkout: string, stateFile: string): Promise<number[]> {
  const [marked, group] = await Promise.all([
    checkout ? processesIn(checkout, CHECKOUT_VARIABLE) : [],
    recordedGroup(stateFile),
  ]);
  return [...new Set([...marked, ...group])];
}

/**
 * The processes of the group the supervisor recorded; none when its leader's pid is another
 * process's now. A group that outlives its leader keeps its number: Linux gives no new process a
 * pid that is still a group's.
 */
async function recordedGroup(stateFile: string): Promise<number[]> {
  const state = await readSupervisedState(stateFile);
  if (!state?.pid || !state.startTime) return [];
  const leader = await processIdentity(state.pid);
  if (leader && leader.startTime !== state.startTime) return [];
  return processGroup(state.pid);
}

/** Stops the processes together (each has `graceMs` after SIGTERM). */
async function stopAll(pids: readonly number[], graceMs: number): Promise<void> {
  await Promise.all(pids.map((pid) => stopProcess(pid, graceMs)));
}

/** Stops the supervisor, which stops the app (it gives the app 10 s); waits until both are gone. */
async function stopSupervisor(pid: number, specFile: string): Promise<void> {
  if (await supervising(pid, specFile)) await stopProcess(pid, 15_000);
}
