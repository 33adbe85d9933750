import Docker from "dockerode";
import pRetry from "p-retry";
import { onTestFinished } from "vitest";
import { demultiplex } from "../../src/lab/docker.js";

export { type LocalImage, localImage } from "./example-app.js";

/** The Docker Engine the tests use: DOCKER_HOST or the local socket, as users have it. */
export const docker = new Docker();

/** Label on everything a test starts, with this run's id, so cleanup finds exactly that. */
export const TEST_LABEL = "labtest.test-run";
export const RUN_ID = `${process.pid}-${Date.now()}`;

export interface TestContainer {
  id: string;
  /** The loopback port the container's `port` is published on. */
  hostPort(port: number): number;
  /** The container's last log lines, for failure messages. */
  logs(): Promise<string>;
}

/**
 * Starts a container publishing `ports` on random loopback ports; it is removed when the test
 * ends, pass or fail.
 */
export async function startContainer(
  image: string,
  options: { env?: Record<string, string>; ports: number[] },
): Promise<TestContainer> {
  const container = await docker.createContainer({
    Image: image,
    Env: Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: { [TEST_LABEL]: RUN_ID },
    ExposedPorts: Object.fromEntries(options.ports.map((p) => [`${p}/tcp`, {}])),
    HostConfig: {
      PortBindings: Object.fromEntries(
        options.ports.map((p) => [`${p}/tcp`, [{ HostIp: "127.0.0.1", HostPort: "" }]]),
      ),
    },
  });
  onTestFinished(() => container.remove({ force: true, v: true }).catch(() => undefined));
  await container.start();
  const info = await container.inspect();
  const logs = async () => {
    const buffer = (await container.logs({ stdout: true, stderr: true, tail: 20 })) as unknown as Buffer;
    return demultiplex(buffer);
  };
  return {
    id: container.id,
    hostPort(port) {
      const binding = info.NetworkSettings.Ports[`${port}/tcp`]?.[0];
      if (!binding) throw new Error(`port ${port} of ${image} is not published`);
      return Number(binding.HostPort);
    },
    logs,
  };
}

/** Retries `attempt` until it succeeds or `timeoutMs` passes; the error then carries the container's log. */
export async function whenReady<T>(
  container: TestContainer,
  what: string,
  attempt: () => Promise<T>,
  timeoutMs = 60_000,
): Promise<T> {
  try {
    return await pRetry(attempt, {
      retries: 1000,
      minTimeout: 100,
      maxTimeout: 500,
      factor: 1.5,
      maxRetryTime: timeoutMs,
    });
  } catch (error) {
    throw new Error(
      `${what} not ready after ${timeoutMs} ms: ${(error as Error).message}\nlast log lines:\n${await container.logs()}`,
      {
        cause: error,
      },
    );
  }
}

/** Removes every container of this test run (a safety net behind the per-test cleanup). */
export async function removeRunContainers(): Promise<void> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${TEST_LABEL}=${RUN_ID}`] },
  });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
}
