// What the laboratory's servers and apps share on a Docker Engine: the experiment's network,
// images that may have to be pulled, containers run to completion, and Docker's log framing.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { PassThrough } from "node:stream";
import { text } from "node:stream/consumers";
import type Docker from "dockerode";
import pRetry from "p-retry";
import type protobuf from "protobufjs";
import { resourceName } from "../config/names.js";
import { DockerEngineError, engineError, type ImageChoice, imageMissing } from "./docker-errors.js";
import { LABELS } from "./labels.js";
import { stopProcess } from "./processes.js";
import type { Registry } from "./registry.js";

/** The Docker Engine client: this module is the one that knows it is dockerode. */
export type { default as Docker } from "dockerode";
export { engineUnreachable } from "./docker-errors.js";

/** The variables through which docker clients (and docker-modem) find their engine. */
const ENGINE_VARIABLES = [
  "DOCKER_HOST",
  "DOCKER_TLS_VERIFY",
  "DOCKER_CERT_PATH",
  "DOCKER_CLIENT_TIMEOUT",
  "DOCKER_PATH_PREFIX",
] as const;

// dockerode (with the grpc-js, ssh2 and protobufjs it brings) and protobufjs are loaded when first
// needed, not when this module is: most commands never reach an engine and should not pay their load.
const require = createRequire(import.meta.url);
let dockerode: typeof Docker | undefined;
const loadDockerode = () => (dockerode ??= require("dockerode") as typeof Docker);

/**
 * The Docker Engine that `env` names (DOCKER_HOST and its companions), else the local socket.
 * The client is made (and dockerode loaded) on its first use: a laboratory opened for a request
 * that never reaches an engine (a list of no experiments, the state, the tokens) skips both.
 */
export function dockerEngine(env: NodeJS.ProcessEnv = process.env): Docker {
  let engine: Docker | undefined;
  const made = () => (engine ??= madeDockerEngine(env));
  return new Proxy({} as Docker, {
    get(_target, key) {
      const value: unknown = Reflect.get(made(), key);
      return typeof value === "function" ? value.bind(made()) : value;
    },
    set: (_target, key, value) => Reflect.set(made(), key, value),
  });
}

function madeDockerEngine(env: NodeJS.ProcessEnv): Docker {
  const Docker = loadDockerode();
  if (env === process.env) return reportingEngineErrors(new Docker());
  // docker-modem reads these from process.env alone, once, as it is made: lend it `env`'s.
  const saved = ENGINE_VARIABLES.map((key) => [key, process.env[key]] as const);
  const set = (key: string, value: string | undefined) => {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  };
  try {
    for (const key of ENGINE_VARIABLES) set(key, env[key]);
    return reportingEngineErrors(new Docker());
  } finally {
    for (const [key, value] of saved) set(key, value);
  }
}

/** The part of docker-modem every request of dockerode goes through. */
interface Modem {
  socketPath?: string;
  protocol?: string;
  host?: string;
  port?: string | number;
  dial(options: unknown, callback: (error: unknown, data: unknown) => void): void;
}

/**
 * `docker`, its requests failing with a DockerEngineError (what, where, fix) when the engine
 * cannot be reached: one place for every call of every caller, rather than a catch at each.
 */
function reportingEngineErrors(docker: Docker): Docker {
  const modem = docker.modem as Modem;
  const engine = modem.socketPath ?? `${modem.protocol ?? "http"}://${modem.host}:${modem.port}`;
  const dial = modem.dial.bind(modem);
  modem.dial = (options, callback) =>
    dial(options, (error, data) => callback(error ? engineError(error, engine) : error, data));
  return docker;
}

/**
 * The network of an experiment: its apps and services find each other by name on it. The
 * laboratory's id is part of the name: Docker allows duplicate network names, and two
 * laboratories on one engine may both have an experiment `main` of an app `hello`.
 */
export function experimentNetwork(laboratory: string, app: string, experiment: string): string {
  return resourceName(app, experiment, laboratory);
}

/**
 * The experiment's network, created on first need (under a lock: Docker allows duplicate names),
 * with the experiment's apps and dedicated servers on it: a network removed, or a container
 * disconnected, behind labtest's back is repaired here.
 */
export async function ensureExperimentNetwork(
  docker: Docker,
  registry: Registry,
  app: string,
  experiment: string,
): Promise<string> {
  const name = experimentNetwork(registry.id, app, experiment);
  await registry.withLock(`network-${name}`, async () => {
    const existing = await docker.listNetworks({ filters: { name: [name] } });
    if (!existing.some((n) => n.Name === name))
      await docker.createNetwork({
        Name: name,
        Labels: { [LABELS.laboratory]: registry.id, [LABELS.app]: app, [LABELS.experiment]: experiment },
      });
    await reattach(docker, registry.id, { app, experiment }, name);
  });
  return name;
}

/**
 * Connects the experiment's apps and dedicated servers that are not on `network` back to it, a
 * server under its service's name as at its creation; a running app is restarted, as the
 * connections it held over the lost network are dead and most clients would wait on them for
 * minutes. Build and before_start containers are left alone: they live for one command, which
 * made them on the network.
 */
async function reattach(
  docker: Docker,
  laboratory: string,
  owner: { app: string; experiment: string },
  network: string,
): Promise<void> {
  const members = await docker.listContainers({
    all: true,
    filters: {
      label: [
        `${LABELS.laboratory}=${laboratory}`,
        `${LABELS.app}=${owner.app}`,
        `${LABELS.experiment}=${owner.experiment}`,
      ],
    },
  });
  for (const container of members) {
    const service = container.Labels[LABELS.service];
    if (container.Labels[LABELS.role] !== "app" && service === undefined) continue;
    if (container.NetworkSettings?.Networks?.[network]) continue;
    const connected = await docker
      .getNetwork(network)
      .connect({ Container: container.Id, EndpointConfig: { Aliases: service ? [service] : [] } })
      .then(
        () => true,
        (error: { statusCode?: number }) => {
          // Gone meanwhile (404), or connected by a command running beside this one (403, 409).
          if (![403, 404, 409].includes(error.statusCode ?? 0)) throw error;
          return false;
        },
      );
    if (connected && service === undefined && container.State === "running")
      await docker.getContainer(container.Id).restart({ t: 1 }).catch(ignoreNotFound);
  }
}

/**
 * Takes the experiment's network down once nothing of the experiment is on it: containers of
 * other experiments (communal servers, shared targets) are disconnected first.
 */
export async function releaseExperimentNetwork(
  docker: Docker,
  laboratory: string,
  app: string,
  experiment: string,
): Promise<void> {
  const name = experimentNetwork(laboratory, app, experiment);
  const found = (await docker.listNetworks({ filters: { name: [name] } })).find((n) => n.Name === name);
  if (!found) return;
  const network = docker.getNetwork(found.Id);
  const info = (await network.inspect()) as { Containers?: Record<string, unknown> };
  for (const id of Object.keys(info.Containers ?? {})) {
    const labels = (await inspectContainer(docker, id))?.Config.Labels ?? {};
    if (labels[LABELS.app] !== app || labels[LABELS.experiment] !== experiment)
      await network.disconnect({ Container: id, Force: true }).catch(ignoreNotFound);
  }
  const remaining = (await network.inspect()) as { Containers?: Record<string, unknown> };
  if (Object.keys(remaining.Containers ?? {}).length > 0) return;
  // The engine lets go of a removed container's endpoint a moment after the removal returns.
  await pRetry(() => network.remove().catch(ignoreNotFound), {
    retries: 20,
    minTimeout: 50,
    maxTimeout: 250,
    shouldRetry: ({ error }) => (error as { statusCode?: number }).statusCode === 403,
  });
}

export async function inspectContainer(
  docker: Docker,
  name: string,
): Promise<Docker.ContainerInspectInfo | undefined> {
  try {
    return await docker.getContainer(name).inspect();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}

/**
 * Pulls `image` unless the engine has it. When it can be neither found nor pulled, rejects
 * naming the image, how to put it on the laboratory, and where it was `chosen`.
 */
export async function pullIfMissing(docker: Docker, image: string, chosen: ImageChoice): Promise<void> {
  try {
    await docker.getImage(image).inspect();
    return;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  }
  try {
    const stream = await docker.pull(image);
    await new Promise((resolve, reject) =>
      docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))),
    );
  } catch (error) {
    if (error instanceof DockerEngineError) throw error;
    throw imageMissing(image, error, chosen);
  }
}

/** Runs a command in a running container and collects its output and exit code. */
export async function execIn(
  container: Docker.Container,
  cmd: string[],
  env: Record<string, string> = {},
  input?: string,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const [out, err] = [text(stdout), text(stderr)];
  const exitCode = await execStreaming(container, cmd, env, stdout, stderr, input);
  stdout.end();
  stderr.end();
  return { exitCode, stdout: await out, stderr: await err };
}

/**
 * Runs a command in a running container, writing its output as it comes, `input` (if any) on its
 * standard input; resolves to its exit code. When `signal` aborts, the command is stopped with
 * what it started (see stopExec) and the exit code is the one it was stopped with.
 */
export async function execStreaming(
  container: Docker.Container,
  cmd: string[],
  env: Record<string, string>,
  stdout: NodeJS.WritableStream,
  stderr: NodeJS.WritableStream,
  input?: string,
  signal?: AbortSignal,
): Promise<number> {
  const stdin = input !== undefined;
  const exec = await container.exec({
    Cmd: cmd,
    Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
    AttachStdin: stdin,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin });
  container.modem.demuxStream(stream, stdout, stderr);
  if (stdin) stream.end(input);
  let stop = () => {};
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on("end", resolve);
      stream.on("error", reject);
      // A command that cannot be stopped runs on: its output is let go of, and the error says so.
      stop = () =>
        void stopExec(container, exec).catch((error: unknown) => {
          stream.destroy();
          reject(error);
        });
      if (signal?.aborted) stop();
      signal?.addEventListener("abort", stop, { once: true });
    });
  } finally {
    signal?.removeEventListener("abort", stop);
  }
  const { ExitCode } = await exec.inspect();
  return ExitCode ?? -1;
}

/** How long a stopped exec's command has to end after SIGTERM, as long as a stopped app has. */
const EXEC_GRACE_SECONDS = 10;

/**
 * Stops an exec's command and what it started: the Engine API has no call that ends an exec
 * (closing its stream leaves it running). runc makes the command a process group leader, so its
 * group is the command with its children. ExecInspect's Pid is the command's pid on the engine's
 * host; labtest signals that group itself when the process is one of this machine's, in that
 * container (its cgroup names the container: the pid of a remote engine's process never reaches
 * one of ours), and when labtest may (root, or the container's user); otherwise the container's
 * own shell signals it, by its pid in the container (NSpid). A remote engine's exec (or rootless
 * Docker's, whose pids are another namespace's) cannot be stopped: that is a DockerEngineError.
 */
async function stopExec(container: Docker.Container, exec: Docker.Exec): Promise<void> {
  let info = await exec.inspect();
  // Just started, its process may not be there yet (not running, or running without a pid).
  const ended = () => !info.Running && info.ExitCode !== null;
  for (let waited = 0; !info.Pid && !ended() && waited < 5000; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    info = await exec.inspect();
  }
  if (ended()) return;
  const { Pid: pid, ContainerID: id } = info;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const cgroup = await readFile(`/proc/${pid}/cgroup`, "utf8").catch(() => "");
  const inContainer = /^NSpid:.*\s(\d+)$/m.exec(status)?.[1];
  if (!cgroup.includes(id) || inContainer === undefined)
    throw new DockerEngineError(`labtest could not stop the command it ran in container ${id.slice(0, 12)}`, [
      {
        where: `container ${id.slice(0, 12)}, exec process ${pid} on the engine's host`,
        what: "the engine has no way to end an exec, and labtest signals its process only when the engine runs on labtest's machine",
        fix: `on the engine's host: kill -TERM -${pid} (or docker restart ${id.slice(0, 12)})`,
      },
    ]);
  try {
    // A negative pid is the process group (kill(2)).
    await stopProcess(-pid, EXEC_GRACE_SECONDS * 1000);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") throw error;
    const { exitCode, stderr } = await execIn(container, [
      "sh",
      "-c",
      STOP_GROUP,
      "stop",
      inContainer,
      String(EXEC_GRACE_SECONDS),
    ]);
    if (exitCode !== 0)
      throw new DockerEngineError(
        `labtest could not stop the command it ran in container ${id.slice(0, 12)}`,
        [
          {
            where: `container ${id.slice(0, 12)}, process group ${inContainer} in it`,
            what: `labtest may not signal it from the host, and sh in the container failed: ${stderr.trim() || `exit ${exitCode}`}`,
            fix: `docker exec ${id.slice(0, 12)} kill -TERM -${inContainer} (or docker restart ${id.slice(0, 12)})`,
          },
        ],
      );
  }
}

/** sh script: SIGTERM to process group $1, SIGKILL after $2 seconds if it is still there. */
const STOP_GROUP = `kill -TERM -"$1" 2>/dev/null || exit 0
waited=0
while kill -0 -"$1" 2>/dev/null; do
  [ "$waited" -ge "$2" ] && { kill -KILL -"$1"; exit 0; }
  sleep 1; waited=$((waited + 1))
done`;

export function ignoreNotFound(error: { statusCode?: number }): void {
  if (error.statusCode !== 404) throw error;
}

/** Docker multiplexes stdout and stderr in 8-byte-headed frames when there is no TTY. */
export function demultiplex(buffer: Buffer): string {
  const parts: string[] = [];
  for (let offset = 0; offset + 8 <= buffer.length; ) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size).toString("utf8"));
    offset += 8 + size;
  }
  return parts.join("");
}

/** A container's last `tail` log lines (or all of them). */
export async function containerLogs(container: Docker.Container, tail?: number): Promise<string> {
  const buffer = (await container.logs({
    stdout: true,
    stderr: true,
    ...(tail ? { tail } : {}),
  })) as unknown as Buffer;
  return demultiplex(buffer);
}

/** A BuildKit status message, as a build's progress carries them. */
export interface BuildkitStatus {
  vertexes: { digest: string; name: string; started: unknown; error: string }[];
  logs: { msg: Uint8Array }[];
}

let statusResponse: protobuf.Type | undefined;

/**
 * Decodes a build's BuildKit status (an `aux` of its progress stream) with the schema dockerode
 * ships: dockerode's own decoder hands the steps' output on still base64-encoded.
 */
export function buildkitStatus(aux: string): BuildkitStatus {
  statusResponse ??= (require("protobufjs") as typeof protobuf)
    .loadSync(require.resolve("dockerode/lib/proto/buildkit_status.proto"))
    .lookupType("moby.buildkit.v1.StatusResponse");
  return statusResponse.toObject(statusResponse.decode(Buffer.from(aux, "base64")), {
    defaults: true,
  }) as BuildkitStatus;
}
