// What the laboratory's servers and apps share on a Docker Engine: the experiment's network,
// images that may have to be pulled, containers run to completion, and Docker's log framing.
import { PassThrough } from "node:stream";
import { text } from "node:stream/consumers";
import type Docker from "dockerode";
import pRetry from "p-retry";
import { resourceName } from "../config/names.js";
import { LABELS } from "./labels.js";
import type { Registry } from "./registry.js";

/**
 * The network of an experiment: its apps and services find each other by name on it. The
 * laboratory's id is part of the name: Docker allows duplicate network names, and two
 * laboratories on one engine may both have an experiment `main` of an app `hello`.
 */
export function experimentNetwork(laboratory: string, app: string, experiment: string): string {
  return resourceName(app, experiment, laboratory);
}

/** The experiment's network, created on first need (under a lock: Docker allows duplicate names). */
export async function ensureExperimentNetwork(
  docker: Docker,
  registry: Registry,
  app: string,
  experiment: string,
): Promise<string> {
  const name = experimentNetwork(registry.id, app, experiment);
  await registry.withLock(`network-${name}`, async () => {
    const existing = await docker.listNetworks({ filters: { name: [name] } });
    if (existing.some((n) => n.Name === name)) return;
    await docker.createNetwork({
      Name: name,
      Labels: { [LABELS.laboratory]: registry.id, [LABELS.app]: app, [LABELS.experiment]: experiment },
    });
  });
  return name;
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

/** Pulls `image` unless the engine has it; rejects with the engine's reason when it cannot. */
export async function pullIfMissing(docker: Docker, image: string): Promise<void> {
  try {
    await docker.getImage(image).inspect();
    return;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  }
  const stream = await docker.pull(image);
  await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))),
  );
}

/** Runs a command in a running container and collects its output and exit code. */
export async function execIn(
  container: Docker.Container,
  cmd: string[],
  env: Record<string, string> = {},
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const [out, err] = [text(stdout), text(stderr)];
  const exitCode = await execStreaming(container, cmd, env, stdout, stderr);
  stdout.end();
  stderr.end();
  return { exitCode, stdout: await out, stderr: await err };
}

/** Runs a command in a running container, writing its output as it comes; resolves to its exit code. */
export async function execStreaming(
  container: Docker.Container,
  cmd: string[],
  env: Record<string, string>,
  stdout: NodeJS.WritableStream,
  stderr: NodeJS.WritableStream,
): Promise<number> {
  const exec = await container.exec({
    Cmd: cmd,
    Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  container.modem.demuxStream(stream, stdout, stderr);
  await new Promise<void>((resolve, reject) => {
    stream.on("end", resolve);
    stream.on("error", reject);
  });
  const { ExitCode } = await exec.inspect();
  return ExitCode ?? -1;
}

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
