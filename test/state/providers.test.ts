import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lookup, openState } from "../../src/state/index.js";
import { scratchDir } from "../support/project.js";
import {
  type RunningServer,
  S3RVER_CREDENTIALS,
  startRedisServer,
  startS3Server,
} from "../support/servers.js";

/** The documented example, plus values for the merge and parsing cases. */
const VALUES: Record<string, unknown> = {
  "/services/docker/postgresql/default": {
    image: "postgres",
    version: "16",
    options: { shared_buffers: "128MB", fsync: "on" },
  },
  "/services/docker/postgresql/app-name1": { version: "15", options: { fsync: "off" } },
  "/services/docker/mysql/default": { image: "mariadb", version: "11" },
  "/default": { expiry_days: 7 },
  "/banner": "plain text, not JSON",
};

/** A provider under test: stores VALUES its own way and returns the state.json that reaches them. */
interface ProviderCase {
  name: string;
  prepare(dir: string): Promise<object>;
}

let redis: RunningServer;
let s3: RunningServer;
// The S3 store takes credentials from the AWS SDK's standard chain, which reads the environment.
Object.assign(process.env, S3RVER_CREDENTIALS);
const env = process.env;

const cases: ProviderCase[] = [
  {
    name: "local/file (YAML)",
    async prepare(dir) {
      const { stringify } = await import("yaml");
      await writeFile(join(dir, "state.yml"), stringify(VALUES));
      return { provider: "local", service: "file", options: { path: "state.yml" } };
    },
  },
  {
    name: "local/file (JSON)",
    async prepare(dir) {
      await writeFile(join(dir, "values.json"), JSON.stringify(VALUES));
      return { provider: "local", service: "file", options: { path: join(dir, "values.json") } };
    },
  },
  {
    name: "local/directory",
    async prepare(dir) {
      const root = join(dir, "tree");
      const entries = Object.entries(VALUES);
      for (const [index, [key, value]] of entries.entries()) {
        // One key per form the provider reads: plain file, .json and .yml.
        const suffix = ["", ".json", ".yml"][index % 3] ?? "";
        const file = join(root, key.slice(1)) + suffix;
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, typeof value === "string" ? `${value}\n` : JSON.stringify(value));
      }
      return { provider: "local", service: "directory", options: { path: "tree" } };
    },
  },
  {
    name: "local/script",
    async prepare(dir) {
      await writeFile(join(dir, "values.json"), JSON.stringify(VALUES));
      const script = join(dir, "lab-state");
      await writeFile(
        script,
        `#!/usr/bin/env node\nconst values = require(${JSON.stringify(join(dir, "values.json"))});\nconst v = values[process.argv[2]];\nif (v !== undefined) process.stdout.write(typeof v === "string" ? v : JSON.stringify(v));\n`,
      );
      await chmod(script, 0o755);
      return { provider: "local", service: "script", options: { command: "./lab-state" } };
    },
  },
  {
    name: "aws/s3 (S3-protocol server on loopback)",
    async prepare(dir) {
      const client = new S3Client({
        region: "us-east-1",
        endpoint: s3.url,
        forcePathStyle: true,
        credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      });
      const prefix = `run-${dir.split("-").pop()}`;
      for (const [key, value] of Object.entries(VALUES)) {
        const body = typeof value === "string" ? value : JSON.stringify(value);
        await client.send(
          new PutObjectCommand({ Bucket: "labtest-state", Key: `${prefix}/${key.slice(1)}`, Body: body }),
        );
      }
      client.destroy();
      return {
        provider: "aws",
        service: "s3",
        options: { bucket: "labtest-state", prefix, endpoint: s3.url },
      };
    },
  },
  {
    name: "redis/redis (real redis-server)",
    async prepare(dir) {
      const prefix = `state-${dir.split("-").pop()}:`;
      const client = new Redis(redis.url);
      for (const [key, value] of Object.entries(VALUES))
        await client.set(prefix + key, typeof value === "string" ? value : JSON.stringify(value));
      client.disconnect();
      return { provider: "redis", service: "redis", options: { url: redis.url, prefix } };
    },
  },
];

async function stateFor(providerCase: ProviderCase) {
  const dir = await scratchDir();
  await writeFile(join(dir, "state.json"), JSON.stringify(await providerCase.prepare(dir)));
  return openState({ statePath: join(dir, "state.json"), env });
}

describe.each(cases)("state provider $name", (providerCase) => {
  beforeAll(async () => {
    redis ??= await startRedisServer();
    s3 ??= await startS3Server(["labtest-state"]);
  });

  it("answers the documented example on the first and the third candidate", async () => {
    const { store } = await stateFor(providerCase);
    try {
      const postgres = await lookup(store, "/services/docker/postgresql/app-name1");
      expect(postgres.answeredBy).toBe("/services/docker/postgresql/app-name1");
      expect(postgres.value).toEqual(VALUES["/services/docker/postgresql/app-name1"]);
      const mysql = await lookup(store, "/services/docker/mysql/app-name1");
      expect(mysql.candidates.map((c) => c.key)).toEqual([
        "/services/docker/mysql/app-name1",
        "/services/docker/mysql/app-name1/default",
        "/services/docker/mysql/default",
        "/services/docker/default",
        "/services/default",
        "/default",
      ]);
      expect(mysql.candidates.findIndex((c) => c.key === mysql.answeredBy)).toBe(2);
      expect(mysql.value).toEqual({ image: "mariadb", version: "11" });
    } finally {
      await store.close();
    }
  });

  it("deep-merges every candidate's object, the more specific winning field by field", async () => {
    const { store } = await stateFor(providerCase);
    try {
      const result = await lookup(store, "/services/docker/postgresql/app-name1", "deep");
      expect(result.value).toEqual({
        expiry_days: 7,
        image: "postgres",
        version: "15",
        options: { shared_buffers: "128MB", fsync: "off" },
      });
      expect(result.fieldSources).toEqual({
        expiry_days: "/default",
        image: "/services/docker/postgresql/default",
        version: "/services/docker/postgresql/app-name1",
        "options.shared_buffers": "/services/docker/postgresql/default",
        "options.fsync": "/services/docker/postgresql/app-name1",
      });
    } finally {
      await store.close();
    }
  });

  it("falls back to /default, returns non-JSON values as strings, and reports a miss", async () => {
    const { store } = await stateFor(providerCase);
    try {
      expect((await lookup(store, "/laboratory/expiry")).value).toEqual({ expiry_days: 7 });
      expect((await lookup(store, "/banner")).value).toBe("plain text, not JSON");
      const { store: empty } = await openState({ env: { LABTEST_HOME: await scratchDir() } });
      const miss = await lookup(empty, "/services/docker/redis/app");
      expect(miss).toMatchObject({ found: false, value: undefined });
      expect(miss.candidates.every((c) => !c.found)).toBe(true);
    } finally {
      await store.close();
    }
  });

  afterAll(async () => {
    if (providerCase === cases[cases.length - 1]) await Promise.all([redis?.stop(), s3?.stop()]);
  });
});
