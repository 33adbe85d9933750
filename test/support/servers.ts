import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import getPort from "get-port";
import { Redis } from "ioredis";
import pRetry, { AbortError } from "p-retry";
import S3rver from "s3rver";

export interface RunningServer {
  url: string;
  stop(): Promise<void>;
}

/** A real redis-server (Debian's, installed by scripts/infra/setup.sh) on a free loopback port. */
export async function startRedisServer(): Promise<RunningServer> {
  const port = await getPort({ host: "127.0.0.1" });
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  const url = `redis://127.0.0.1:${port}`;
  await pRetry(
    async () => {
      if (child.exitCode !== null) throw new AbortError(`redis-server exited with ${child.exitCode}`);
      const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
      client.on("error", () => undefined);
      try {
        await client.connect();
        await client.ping();
      } finally {
        client.disconnect();
      }
    },
    { retries: 50, minTimeout: 50, maxTimeout: 200 },
  );
  return { url, stop: () => stopChild(child) };
}

/** An S3-protocol server (s3rver) on a free loopback port, with the given buckets. */
export async function startS3Server(buckets: string[]): Promise<RunningServer> {
  const directory = await mkdtemp(join(tmpdir(), "labtest-s3-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  const { port } = (await server.run()) as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** s3rver's fixed credentials, given to the AWS SDK through its standard environment chain. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}
