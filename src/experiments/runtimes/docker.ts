import { PassThrough } from "node:stream";
import getPort from "get-port";
import { resourceName } from "../../config/names.js";
import {
  containerLogs,
  type Docker,
  engineUnreachable,
  ensureExperimentNetwork,
  execStreaming,
  experimentNetwork,
  ignoreNotFound,
  inspectContainer,
  pullIfMissing,
  releaseExperimentNetwork,
} from "../../lab/docker.js";
import type { Sweep } from "../../lab/garbage.js";
import { LABELS } from "../../lab/labels.js";
import { processesSharingNetwork } from "../../lab/processes.js";
import type { Registry } from "../../lab/registry.js";
import { listeningPorts } from "../../lab/sockets.js";
import { commandArgv } from "../command.js";
import { type ExperimentIdentity, rowFromEnvironment } from "../environment.js";
import { ExperimentError } from "../errors.js";
import type { ExperimentRow } from "../registry.js";
import { keepOutput, stepFailure, waitForAnswer } from "../steps.js";
import { containerExecOutput } from "../unstarted.js";
import { buildAppImage, imageTag } from "./docker-image.js";
import type {
  AppHealth,
  AppRelease,
  AppRuntime,
  ExecOutput,
  PreparedRelease,
  Progress,
  StartedApp,
} from "./runtime.js";

/** The port an app listens on when its image exposes none. */
const DEFAULT_APP_PORT = 8000;

/** Where app_build_command finds the checkout inside its build container. */
const BUILD_MOUNT = "/src";
/** LabTest mounted the checkout at /build: its build scripts still find it there. */
const LABTEST_BUILD_MOUNT = "/build";

type Role = "app" | "build" | "before-start";
type Experiment = { app: string; name: string };

/** The option a one-off container of a role runs: its output is kept under that name. */
const STEP_OPTIONS: Record<Exclude<Role, "app">, string> = {
  build: "app_build_command",
  "before-start": "before_start_command",
};

/**
 * Apps as containers of a Docker Engine: an image built from the checkout, a container on the
 * experiment's network (where its services answer by name) with a restart policy, so it comes
 * back with the engine after a reboot; published on the laboratory's loopback for the router.
 */
export class DockerRuntime implements AppRuntime {
  readonly name = "docker";

  constructor(
    private readonly docker: Docker,
    /** The laboratory: its id labels everything, its locks guard the experiment networks. */
    private readonly laboratory: Registry,
    private readonly answerTimeoutMs?: number,
  ) {}

  check(config: AppRelease["config"], file: string): void {
    if (config.app_build_command && !config.app_build_image)
      throw new ExperimentError("app_build_command needs app_build_image on the docker runtime", [
        {
          where: `${file}: labtest.app_build_image`,
          what: `the build step runs in a container of that image, with the checkout at ${BUILD_MOUNT}`,
          fix: "set app_build_image (e.g. node:20), or build in the Dockerfile instead",
        },
      ]);
    const local = Object.entries(config.services).filter(([, s]) => s.provider === "local");
    const [first] = local;
    if (first)
      throw new ExperimentError(
        `an app in a container cannot reach local services: ${local.map(([n]) => n).join(", ")}`,
        [
          {
            where: `${file}: labtest.services.${first[0]}.provider`,
            what: "local servers listen on the laboratory's loopback, which containers do not share",
            fix: "use provider: docker for them, or runtime: local",
          },
        ],
      );
  }

  async prepare(
    release: AppRelease,
    previous: ExperimentRow | undefined,
    progress: Progress,
  ): Promise<PreparedRelease> {
    const { identity, config } = release;
    this.check(config, release.configFile);
    const tag = imageTag(config.docker_image_pattern, identity, release.configFile);
    if (config.app_build_command) await this.buildStep(release, progress);
    const image = await buildAppImage(this.docker, {
      directory: release.appDirectory,
      tag,
      identity,
      labels: this.labels(identity, "app"),
      command: config.container_build_command,
      progress,
    });
    // The build tagged the new image; the tag names the running release's until this one answers.
    const running = await this.runningImage(previous);
    if (running && running !== image) await this.docker.getImage(running).tag(splitTag(tag));
    return { ...release, image };
  }

  /** Removes the release's image, and gives its tag back to the release that keeps running. */
  async discard(release: PreparedRelease, previous: ExperimentRow | undefined): Promise<void> {
    const previousImage = await this.runningImage(previous);
    if (release.image && release.image !== previousImage) await this.removeImage(release.image, true);
    const tag = imageTag(release.config.docker_image_pattern, release.identity, release.configFile);
    if (previousImage) await this.docker.getImage(previousImage).tag(splitTag(tag));
  }

  /** The image a recorded release's container runs; none where a create did not get to start one. */
  private async runningImage(row: ExperimentRow | undefined): Promise<string | undefined> {
    if (row?.runtime !== "docker" || !row.handle) return undefined;
    return (await inspectContainer(this.docker, row.handle))?.Image;
  }

  async launch(
    release: PreparedRelease,
    previous: ExperimentRow | undefined,
    progress: Progress,
  ): Promise<StartedApp> {
    const { identity, config } = release;
    const image = release.image ?? "";
    const removals: Promise<unknown>[] = [];
    let creating: Promise<Docker.Container> | undefined;
    try {
      const exposed = Object.keys((await this.docker.getImage(image).inspect()).Config.ExposedPorts ?? {});
      const port = Number(exposed.find((p) => p.endsWith("/tcp"))?.split("/")[0] ?? DEFAULT_APP_PORT);
      const env = { ...release.env, PORT: String(port) };
      const network = await ensureExperimentNetwork(
        this.docker,
        this.laboratory,
        identity.app,
        identity.name,
      );
      const hostPort = await getPort({ host: "127.0.0.1" });
      const binding = `${port}/tcp`;
      // The app's container is made while the migration runs, and started once it succeeded.
      creating = this.docker.createContainer({
        name: `${resourceName(identity.app, identity.name, this.laboratory.id)}-${Date.now().toString(36)}`,
        Image: image,
        ...(config.start_command ? { Cmd: commandArgv("start_command", config.start_command, env) } : {}),
        Env: envList(env),
        Labels: this.labels(identity, "app"),
        ExposedPorts: { [binding]: {} },
        HostConfig: {
          PortBindings: { [binding]: [{ HostIp: "127.0.0.1", HostPort: String(hostPort) }] },
          RestartPolicy: { Name: "unless-stopped" },
          NetworkMode: network,
        },
      });
      creating.catch(() => undefined); // observed below, whichever way the migration goes
      if (config.before_start_command) {
        progress("running before_start_command");
        const result = await this.runToCompletion(
          identity,
          "before-start",
          {
            Image: image,
            Cmd: commandArgv("before_start_command", config.before_start_command, env),
            Env: envList(env),
            HostConfig: { NetworkMode: network },
          },
          removals,
        );
        if (result.exitCode !== 0)
          throw stepFailure(
            "before_start_command",
            config.before_start_command,
            result.exitCode,
            result.output,
          );
      }
      progress("starting the app");
      const container = await creating;
      await container.start();
      progress(`waiting for the app to answer on port ${hostPort}`);
      await waitForAnswer(
        hostPort,
        {
          path: config.health_check_path,
          // A restart while starting is a crash: report it rather than wait through the restarts.
          running: async () => {
            const state = await container.inspect();
            return state.State.Running && !state.State.Restarting && state.RestartCount === 0;
          },
          output: () => containerLogs(container),
          // Sockets of the container's processes only: Docker's embedded DNS listens in the
          // container's network namespace too, on a socket the engine holds.
          listening: async () => {
            const { State } = await container.inspect();
            return State.Pid ? listeningPorts(State.Pid, await processesSharingNetwork(State.Pid)) : [];
          },
          starter: "the image's CMD",
          appPort: port,
        },
        this.answerTimeoutMs,
      );
      // It answers: the experiment switches to it now, and its tag with it.
      await this.docker
        .getImage(image)
        .tag(splitTag(imageTag(config.docker_image_pattern, identity, release.configFile)));
      return { port: hostPort, handle: container.id };
    } catch (error) {
      await (await creating?.catch(() => undefined))?.remove({ force: true }).catch(ignoreNotFound);
      await this.discard(release, previous);
      throw error;
    } finally {
      await Promise.all(removals);
    }
  }

  /**
   * Removes the experiment's app, build and before_start containers other than the current
   * release's (the replaced release's, and any a killed create or update left), keeping the
   * replaced app's output first; then the images only they used.
   */
  async retire(previous: ExperimentRow, current: StartedApp): Promise<void> {
    if (previous.runtime === "docker" && previous.handle && previous.handle !== current.handle)
      await keepOutput(
        "the app's last output, kept as a new release replaced it",
        await this.logs(previous).catch((error: Error) => `(none: ${error.message.split("\n")[0]})`),
      );
    for (const c of await this.containersOf(previous))
      if (c.Id !== current.handle)
        await this.docker.getContainer(c.Id).remove({ force: true, v: true }).catch(ignoreNotFound);
    const now = await inspectContainer(this.docker, current.handle);
    if (!now) return;
    for (const image of await this.imagesOf(previous))
      if (image.Id !== now.Image) await this.removeImage(image.Id, false);
  }

  async health(row: ExperimentRow): Promise<AppHealth> {
    let container: Docker.ContainerInspectInfo | undefined;
    try {
      container = await inspectContainer(this.docker, row.handle);
    } catch (error) {
      const away = engineUnreachable(error);
      if (away === undefined) throw error;
      return { state: "unreachable", restarts: 0, lastExit: null, problem: away };
    }
    if (!container)
      return {
        state: "stopped",
        restarts: 0,
        lastExit: "its container is gone",
        problem: `its container is gone (removed outside labtest): labtest update ${row.name} starts the app anew`,
      };
    const { State, RestartCount } = container;
    const ended = State.Error || (State.FinishedAt.startsWith("0001") ? null : `exit ${State.ExitCode}`);
    const health = { restarts: RestartCount, lastExit: ended || null };
    if (State.Restarting || !State.Running)
      return { ...health, state: State.Restarting ? "restarting" : "stopped" };
    // The router reaches the app through its published port, which it keeps only on its network.
    const network = experimentNetwork(this.laboratory.id, row.app, row.name);
    if (!container.NetworkSettings.Networks[network])
      return {
        ...health,
        state: "unreachable",
        problem: `its container is not on its network ${network} (removed or disconnected outside labtest): labtest services up or labtest update ${row.name} reconnects it`,
      };
    return { ...health, state: "running" };
  }

  /** The app's output; none before a create started it; an error when its container is gone. */
  async logs(row: ExperimentRow): Promise<string> {
    if (!row.handle) return "";
    return containerLogs(this.docker.getContainer(row.handle)).catch((error) => {
      throw this.outputError(row, error);
    });
  }

  async followLogs(row: ExperimentRow, write: (text: string) => void, signal: AbortSignal): Promise<void> {
    if (!row.handle) throw notStarted(row);
    const container = this.docker.getContainer(row.handle);
    const stream = (await container.logs({ follow: true, stdout: true, stderr: true }).catch((error) => {
      throw this.outputError(row, error);
    })) as NodeJS.ReadableStream & { destroy(): void };
    const output = new PassThrough();
    output.on("data", (chunk: Buffer) => write(chunk.toString("utf8")));
    container.modem.demuxStream(stream, output, output);
    await new Promise<void>((resolve, reject) => {
      const stop = () => {
        stream.destroy();
        resolve();
      };
      if (signal.aborted) stop();
      signal.addEventListener("abort", stop, { once: true });
      stream.on("end", resolve);
      stream.on("close", resolve);
      stream.on("error", (error) => reject(this.outputError(row, error)));
    });
  }

  /** Why the app's output cannot be read: its container is gone, or the engine failed. */
  private outputError(row: ExperimentRow, error: { statusCode?: number; message?: string }): ExperimentError {
    const where = `container ${row.handle.slice(0, 12)}`;
    if (error.statusCode === 404)
      return new ExperimentError(`the app's container of ${row.app}/${row.name} is gone`, [
        {
          where,
          what: "it was removed outside labtest, and what the app printed with it",
          fix: `labtest update ${row.name} starts the app anew`,
        },
      ]);
    return new ExperimentError(`the Docker engine did not give the app's output of ${row.app}/${row.name}`, [
      { where, what: error.message ?? String(error), fix: "check that the laboratory's Docker engine runs" },
    ]);
  }

  async exec(
    row: ExperimentRow,
    _release: AppRelease,
    argv: string[],
    output: ExecOutput,
    signal?: AbortSignal,
  ): Promise<number> {
    if (!row.handle) throw notStarted(row);
    if ((await this.health(row)).state !== "running")
      throw new ExperimentError(`the app of ${row.app}/${row.name} is not running`, [
        {
          where: `container ${row.handle.slice(0, 12)}`,
          what: "exec runs the command in the app's container",
          fix: `labtest logs ${row.name} shows why it stopped; labtest update ${row.name} starts it anew`,
        },
      ]);
    const container = this.docker.getContainer(row.handle);
    const watched = containerExecOutput(output.stdout);
    const exitCode = await execStreaming(
      container,
      argv,
      {},
      watched.stdout,
      output.stderr,
      undefined,
      signal,
    );
    const unstarted = watched.unstarted();
    if (unstarted) throw unstarted;
    return exitCode;
  }

  files(): string[] {
    return [];
  }

  async remove(experiment: Experiment): Promise<void> {
    for (const c of await this.containersOf(experiment))
      await this.docker.getContainer(c.Id).remove({ force: true, v: true }).catch(ignoreNotFound);
    for (const image of await this.imagesOf(experiment)) await this.removeImage(image.Id, true);
    await releaseExperimentNetwork(this.docker, this.laboratory.id, experiment.app, experiment.name);
  }

  /** The experiment's app, build and before_start containers, running or not. */
  private containersOf(experiment: Experiment): Promise<Docker.ContainerInfo[]> {
    return this.docker.listContainers({
      all: true,
      filters: { label: [...this.ofExperiment(experiment), LABELS.role] },
    });
  }

  /** The experiment's images, of every release. */
  private imagesOf(experiment: Experiment): Promise<Docker.ImageInfo[]> {
    return this.docker.listImages({ filters: { label: this.ofExperiment(experiment) } });
  }

  private ofExperiment(experiment: Experiment): string[] {
    return [
      `${LABELS.laboratory}=${this.laboratory.id}`,
      `${LABELS.app}=${experiment.app}`,
      `${LABELS.experiment}=${experiment.name}`,
    ];
  }

  async discover(): Promise<ExperimentRow[]> {
    if (!(await this.engineAnswers())) return [];
    const apps = await this.docker.listContainers({
      filters: { label: [`${LABELS.laboratory}=${this.laboratory.id}`, `${LABELS.role}=app`] },
    });
    const found = new Map<string, ExperimentRow>();
    // Newest first: while an update runs two releases, the newer one is the experiment's.
    for (const c of apps.sort((a, b) => b.Created - a.Created)) {
      const info = await inspectContainer(this.docker, c.Id);
      if (!info) continue;
      const env = Object.fromEntries(
        (info.Config.Env ?? []).map((entry) => [
          entry.slice(0, entry.indexOf("=")),
          entry.slice(entry.indexOf("=") + 1),
        ]),
      );
      const published = Object.values(info.HostConfig.PortBindings ?? {})[0] as
        | { HostPort?: string }[]
        | undefined;
      const row = rowFromEnvironment(env, {
        runtime: "docker",
        handle: c.Id,
        since: new Date(c.Created * 1000).toISOString(),
        port: Number(published?.[0]?.HostPort ?? 0),
      });
      if (!found.has(`${row.app}/${row.name}`)) found.set(`${row.app}/${row.name}`, row);
    }
    return [...found.values()];
  }

  private engineAnswers(): Promise<boolean> {
    return this.docker.ping().then(
      () => true,
      () => false,
    );
  }

  async collectGarbage(rows: ExperimentRow[], sweep: Sweep): Promise<void> {
    // Without an engine there is nothing of ours to find (and local-only laboratories have none).
    if (!(await this.engineAnswers())) return;
    const old = (createdSeconds: number) => sweep.old(createdSeconds * 1000);
    const current = new Map(rows.map((row) => [`${row.app}/${row.name}`, row]));
    const ours = { filters: { label: [`${LABELS.laboratory}=${this.laboratory.id}`] } };
    const containers = await this.docker.listContainers({ all: true, ...ours });
    for (const c of containers) {
      const role = c.Labels[LABELS.role];
      if (!role || !old(c.Created)) continue;
      const row = current.get(`${c.Labels[LABELS.app]}/${c.Labels[LABELS.experiment]}`);
      // A half-created experiment is gc's as a whole; an app that is not the current release, a
      // build or before_start container that outlived its command, or one of no experiment, go.
      if (row?.status === "creating" || (role === "app" && row?.handle === c.Id)) continue;
      await sweep.remove(
        `container ${c.Names[0]?.replace(/^\//, "") ?? c.Id}`,
        !row
          ? "its experiment is gone"
          : role === "app"
            ? "an app of a release that is not the current one"
            : `a ${role} container whose command is gone`,
        () => this.docker.getContainer(c.Id).remove({ force: true, v: true }).catch(ignoreNotFound),
      );
    }
    const used = new Set((await this.docker.listContainers({ all: true })).map((c) => c.ImageID));
    // A recorded release's image is its record's, container or not: an update falls back on it.
    const releases = new Set(rows.map((row) => `${row.app}/${row.name}@${row.release}`));
    const recorded = (labels: Record<string, string> | undefined) =>
      releases.has(`${labels?.[LABELS.app]}/${labels?.[LABELS.experiment]}@${labels?.[LABELS.release]}`);
    for (const image of await this.docker.listImages({
      filters: { label: [`${LABELS.laboratory}=${this.laboratory.id}`, LABELS.role] },
    }))
      if (!used.has(image.Id) && !recorded(image.Labels) && old(image.Created))
        await sweep.remove(
          `image ${image.RepoTags?.find((t) => t !== "<none>:<none>") ?? image.Id}`,
          "no container uses it",
          () => this.removeImage(image.Id, false),
        );
  }

  /** The optional build step: app_build_command in a container of app_build_image, on the checkout. */
  private async buildStep(release: AppRelease, progress: Progress): Promise<void> {
    const { config, identity } = release;
    const image = config.app_build_image ?? "";
    const command = config.app_build_command ?? "";
    await pullIfMissing(this.docker, image, {
      where: `${release.configFile}: labtest.app_build_image`,
      fix: "use an image the laboratory has",
    });
    progress(`running app_build_command in ${image}`);
    const uid = process.getuid?.() ?? 0;
    const result = await this.runToCompletion(identity, "build", {
      Image: image,
      Cmd: commandArgv("app_build_command", command, release.env),
      Env: envList({ ...release.env, ...(uid === 0 ? {} : { HOME: "/tmp" }) }),
      WorkingDir: BUILD_MOUNT,
      // What it writes into the checkout belongs to labtest's user, who removes the checkout later.
      ...(uid === 0 ? {} : { User: `${uid}:${process.getgid?.() ?? uid}` }),
      HostConfig: {
        Binds: [BUILD_MOUNT, LABTEST_BUILD_MOUNT].map((mount) => `${release.appDirectory}:${mount}`),
      },
    });
    if (result.exitCode !== 0)
      throw stepFailure("app_build_command", command, result.exitCode, result.output);
  }

  /**
   * Runs a one-off container of the experiment to its end; it is removed, whatever happens:
   * before this resolves, or, given `removals`, in the background (the caller awaits them).
   */
  private async runToCompletion(
    identity: ExperimentIdentity,
    role: Exclude<Role, "app">,
    options: Docker.ContainerCreateOptions,
    removals?: Promise<unknown>[],
  ): Promise<{ exitCode: number; output: string }> {
    const container = await this.docker.createContainer({ ...options, Labels: this.labels(identity, role) });
    try {
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      const output = await containerLogs(container);
      await keepOutput(`${STEP_OPTIONS[role]} (exit ${StatusCode})`, output);
      return { exitCode: StatusCode, output };
    } finally {
      const removal = container.remove({ force: true, v: true }).catch(ignoreNotFound);
      if (removals) removals.push(removal);
      else await removal;
    }
  }

  private labels(identity: ExperimentIdentity, role: Role): Record<string, string> {
    return {
      [LABELS.laboratory]: this.laboratory.id,
      [LABELS.app]: identity.app,
      [LABELS.experiment]: identity.name,
      [LABELS.release]: identity.release,
      [LABELS.role]: role,
    };
  }

  /** Removes an image; one still in use (another release's container) or gone already stays as it is. */
  private async removeImage(id: string, force: boolean): Promise<void> {
    await this.docker
      .getImage(id)
      .remove({ force })
      .catch((error: { statusCode?: number }) => {
        if (error.statusCode !== 404 && error.statusCode !== 409) throw error;
      });
  }
}

/** The error of asking for an app a create has not started yet. */
function notStarted(row: ExperimentRow): ExperimentError {
  return new ExperimentError(`the app of ${row.app}/${row.name} has not started`, [
    {
      where: `experiment ${row.name}`,
      what: `it is ${row.status}: a create did not get to start its app`,
      fix: `labtest update ${row.name} finishes it, or labtest delete ${row.name} removes it`,
    },
  ]);
}

function envList(env: Record<string, string>): string[] {
  return Object.entries(env).map(([key, value]) => `${key}=${value}`);
}

/** `repo[:tag]` as the engine's tag call takes it. */
function splitTag(reference: string): { repo: string; tag: string } {
  const colon = reference.lastIndexOf(":");
  return colon > reference.lastIndexOf("/")
    ? { repo: reference.slice(0, colon), tag: reference.slice(colon + 1) }
    : { repo: reference, tag: "latest" };
}
