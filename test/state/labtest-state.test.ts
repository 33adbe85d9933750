import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { scratchDir } from "../support/project.js";
import { type RunningServer, S3RVER_CREDENTIALS, startS3Server } from "../support/servers.js";

let s3: RunningServer;
// The S3 store takes credentials from the AWS SDK's standard chain, which reads the environment.
Object.assign(process.env, S3RVER_CREDENTIALS);
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  s3 = await startS3Server(["labtest"]);
});
afterAll(() => s3?.stop());

async function put(key: string, value: unknown): Promise<void> {
  const client = new S3Client({
    region: "us-east-1",
    endpoint: s3.url,
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  await client.send(new PutObjectCommand({ Bucket: "labtest", Key: key, Body: JSON.stringify(value) }));
  client.destroy();
}

/** A state.json as LabTest's docs/admin/defaults_and_state/aws.rst writes it (plus the endpoint of the S3 here). */
async function awsRstState(cache: unknown, cachePath?: string): Promise<string> {
  const dir = await scratchDir();
  const options = {
    bucket: "labtest",
    cache,
    ...(cachePath ? { cache_path: cachePath } : {}),
    endpoint: s3.url,
  };
  // The laboratory's account's only: as root, state check warns about one every account can read.
  await writeFile(join(dir, "state.json"), JSON.stringify({ provider: "aws", service: "s3", options }), {
    mode: 0o600,
  });
  return join(dir, "state.json");
}

const get = async (state: string, key: string) => {
  const result = await runCli(["--state", state, "--json", "state", "get", key], "/");
  expect(result.stderr).toBe("");
  return JSON.parse(result.stdout).value;
};

describe("LabTest's S3 state cache (aws.rst)", () => {
  it("cache: true with cache_path keeps what S3 answered as files under cache_path, read first (aws s3 sync primes it)", async () => {
    const cachePath = await scratchDir();
    const state = await awsRstState(true, cachePath);
    const check = await runCli(["--state", state, "state", "check"], "/");
    expect(check.stderr).toBe("");
    expect(check.code).toBe(0);

    await put("services/docker/postgresql/default", { version: "15" });
    expect(await get(state, "/services/docker/postgresql/shop")).toEqual({ version: "15" });
    expect(await exists(join(cachePath, "services/docker/postgresql/default"))).toBe(true);
    // The cache is looked at first: a newer value in S3 is not asked for.
    await put("services/docker/postgresql/default", { version: "16" });
    expect(await get(state, "/services/docker/postgresql/shop")).toEqual({ version: "15" });
    // A file put there by a cron job (aws s3 sync) answers without S3 having it.
    await mkdir(join(cachePath, "services/docker/mysql"), { recursive: true });
    await writeFile(join(cachePath, "services/docker/mysql/default"), '{"version": "5.6"}');
    expect(await get(state, "/services/docker/mysql/shop")).toEqual({ version: "5.6" });
  });

  it("cache: false asks S3 each time and keeps nothing", async () => {
    const cachePath = await scratchDir();
    const state = await awsRstState(false, cachePath);
    await put("services/docker/redis/default", { version: "7" });
    expect(await get(state, "/services/docker/redis/shop")).toEqual({ version: "7" });
    await put("services/docker/redis/default", { version: "8" });
    expect(await get(state, "/services/docker/redis/shop")).toEqual({ version: "8" });
    expect(await exists(join(cachePath, "services"))).toBe(false);
  });

  it("cache_path beside labtest's own cache: {ttl_seconds, path} is an error", async () => {
    const state = await awsRstState({ ttl_seconds: 60 }, await scratchDir());
    const check = await runCli(["--state", state, "state", "check"], "/");
    expect(check.code).not.toBe(0);
    expect(check.stderr).toContain("options.cache_path: cache_path is for LabTest's cache: true");
  });

  it("labtest's own cache: {ttl_seconds, path} is still accepted beside them", async () => {
    const state = await awsRstState({ ttl_seconds: 60, path: await scratchDir() });
    await put("services/docker/memcached/default", { version: "1.6" });
    expect(await get(state, "/services/docker/memcached/shop")).toEqual({ version: "1.6" });
  });
});

/** The state hierarchy of LabTest's docs/admin/defaults_and_state/index.rst, one file per key. */
const HIERARCHY: Record<string, unknown> = {
  default: { from: "/default" },
  "services/docker/postgresql/default": { from: "postgresql/default" },
  "services/docker/postgresql/shared": { from: "postgresql/shared" },
  "services/docker/postgresql/app-name1": { from: "postgresql/app-name1" },
  "services/docker/mysql/default": { from: "mysql/default" },
  "services/docker/mysql/shared": { from: "mysql/shared" },
  "services/docker/mysql/app-name2": { from: "mysql/app-name2" },
};

describe("a get-state script as LabTest's local.rst describes it, as local/script state", () => {
  it("answers each key with the best fit its own walk up finds", async () => {
    const values = await hierarchy();
    const script = join(import.meta.dirname, "..", "fixtures", "labtest-get-state");
    // `env` sets where the script looks (LabTest's example has it fixed in the script).
    await expectBestFits(["env", `STATE_PATH=${values}`, script]);
  });

  it("the page's own bash script, verbatim but for where its values are", async () => {
    const values = await hierarchy();
    const verbatim = await readFile(
      join(import.meta.dirname, "..", "fixtures", "labtest-local-rst-get-state"),
      "utf8",
    );
    const script = join(await scratchDir(), "get-state");
    await writeFile(script, verbatim.replace("STATE_PATH=/testing/labteststate", `STATE_PATH=${values}`), {
      mode: 0o755,
    });
    await expectBestFits([script]);
  });
});

/** HIERARCHY, one file per key, in a directory of its own. */
async function hierarchy(): Promise<string> {
  const values = await scratchDir();
  for (const [key, value] of Object.entries(HIERARCHY)) {
    await mkdir(join(values, key, ".."), { recursive: true });
    await writeFile(join(values, key), JSON.stringify(value));
  }
  return values;
}

/** `command` as a local/script state provider passes state check and answers with HIERARCHY's best fits. */
async function expectBestFits(command: string[]): Promise<void> {
  const state = join(await scratchDir(), "state.json");
  await writeFile(state, JSON.stringify({ provider: "local", service: "script", options: { command } }), {
    mode: 0o600,
  });
  const check = await runCli(["--state", state, "state", "check"], "/");
  expect(check).toMatchObject({ code: 0, stderr: "" });
  expect(await get(state, "/services/docker/postgresql/app-name1")).toEqual({
    from: "postgresql/app-name1",
  });
  expect(await get(state, "/services/docker/mysql/app-name1")).toEqual({ from: "mysql/default" });
  expect(await get(state, "/services/redis/app-name1")).toEqual({ from: "/default" });
}
