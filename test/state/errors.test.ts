import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import getPort from "get-port";
import { describe, expect, it } from "vitest";
import { candidateKeys, isWritable, lookup, openState, StateError } from "../../src/state/index.js";
import { scratchDir } from "../support/project.js";
import { S3RVER_CREDENTIALS, startS3Server } from "../support/servers.js";

async function stateJson(content: string | object): Promise<string> {
  const dir = await scratchDir();
  const file = join(dir, "state.json");
  await writeFile(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
}

const openFile = async (content: string | object) => openState({ statePath: await stateJson(content) });

describe("state keys", () => {
  it("lists candidates most specific first, down to /default", () => {
    expect(candidateKeys("/a/b/c")).toEqual([
      "/a/b/c",
      "/a/b/c/default",
      "/a/b/default",
      "/a/default",
      "/default",
    ]);
    expect(candidateKeys("/a")).toEqual(["/a", "/a/default", "/default"]);
  });

  it.each(["a/b", "/a//b", "/a/../etc/passwd", "/a/./b", "/", "/a/b\n", "/a b"])(
    "rejects the key %j",
    (key) => {
      expect(() => candidateKeys(key)).toThrow(StateError);
    },
  );
});

describe("state.json", () => {
  it("missing at the default place means empty state; missing where named is an error", async () => {
    const home = await scratchDir();
    const empty = await openState({ env: { LABTEST_HOME: home } });
    expect(empty.file).toBeUndefined();
    expect((await lookup(empty.store, "/default")).found).toBe(false);
    await expect(openState({ statePath: join(home, "nope.json") })).rejects.toThrow(
      /cannot read .*nope\.json.*\n {2}fix: check --state or LABTEST_STATE/,
    );
  });

  it.each([
    ["{ not json", /is not valid JSON/],
    [{ service: "file" }, /provider: is required/],
    [
      { provider: "local", service: "file", option: {} },
      /unknown option "option" \(did you mean "options"\?\)/,
    ],
    [
      { provider: "local", service: "sqlite" },
      /unknown state provider\/service local\/sqlite\n {2}fix: use one of local\/file, local\/directory, local\/script, aws\/s3, redis\/redis/,
    ],
    [{ provider: "local", service: "file" }, /options\.path: is required/],
    [
      { provider: "aws", service: "s3", options: { bucket: "b", endpont: "http://x" } },
      /options\.endpont: unknown option "endpont" \(did you mean "endpoint"\?\)/,
    ],
    [
      { provider: "redis", service: "redis", options: { url: "localhost:6379" } },
      /options\.url: expected a redis:\/\/ or rediss:\/\/ URL/,
    ],
  ])("rejects %j naming the file and key", async (content, message) => {
    const error = await openFile(content).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateError);
    expect((error as Error).message).toMatch(/state\.json/);
    expect((error as Error).message).toMatch(message);
  });
});

describe("state store failures are clear and bounded", () => {
  it("a failing script is an error quoting its stderr", async () => {
    const dir = await scratchDir();
    await writeFile(join(dir, "broken"), "#!/bin/sh\necho 'vault sealed' >&2\nexit 3\n");
    await chmod(join(dir, "broken"), 0o755);
    await writeFile(
      join(dir, "state.json"),
      JSON.stringify({ provider: "local", service: "script", options: { command: ["./broken"] } }),
    );
    const { store } = await openState({ statePath: join(dir, "state.json") });
    await expect(lookup(store, "/a")).rejects.toThrow(
      /the state script .*broken failed for \/(a|default).*: vault sealed/,
    );
  });

  it("an unreachable Redis fails within seconds, naming the server", async () => {
    const port = await getPort({ host: "127.0.0.1" });
    const { store } = await openFile({
      provider: "redis",
      service: "redis",
      options: { url: `redis://127.0.0.1:${port}` },
    });
    const started = Date.now();
    await expect(lookup(store, "/a/b")).rejects.toThrow(
      new RegExp(`cannot read state from Redis at redis://127.0.0.1:${port}: .*ECONNREFUSED`),
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    await store.close();
  });

  it("an unreachable S3 endpoint fails within seconds, naming bucket and endpoint", async () => {
    Object.assign(process.env, S3RVER_CREDENTIALS);
    const port = await getPort({ host: "127.0.0.1" });
    const endpoint = `http://127.0.0.1:${port}`;
    const { store } = await openFile({
      provider: "aws",
      service: "s3",
      options: { bucket: "lab", endpoint },
    });
    const started = Date.now();
    await expect(lookup(store, "/a")).rejects.toThrow(
      new RegExp(`cannot read state s3://lab/(a|default)[^ ]* at ${endpoint}: .*ECONNREFUSED`),
    );
    expect(Date.now() - started).toBeLessThan(15_000);
    await store.close();
  });

  it("the S3 cache answers from disk until its TTL passes", async () => {
    Object.assign(process.env, S3RVER_CREDENTIALS);
    const s3 = await startS3Server(["lab"]);
    try {
      const { PutObjectCommand, S3Client } = await import("@aws-sdk/client-s3");
      const admin = new S3Client({ region: "us-east-1", endpoint: s3.url, forcePathStyle: true });
      const put = (value: string) =>
        admin.send(new PutObjectCommand({ Bucket: "lab", Key: "default", Body: value }));
      await put('"one"');
      const cacheDir = await scratchDir();
      const file = await stateJson({
        provider: "aws",
        service: "s3",
        options: { bucket: "lab", endpoint: s3.url, cache: { ttl_seconds: 1, path: cacheDir } },
      });
      const read = async () => {
        const { store } = await openState({ statePath: file });
        try {
          return (await lookup(store, "/x")).value;
        } finally {
          await store.close();
        }
      };
      expect(await read()).toBe("one");
      await put('"two"');
      expect(await read()).toBe("one");
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect(await read()).toBe("two");
      admin.destroy();
    } finally {
      await s3.stop();
    }
  });
});

describe("writing local state", () => {
  it("set and unset on a YAML file keep its comments and other keys", async () => {
    const dir = await scratchDir();
    await writeFile(join(dir, "state.yml"), "# laboratory defaults\n/default:\n  expiry_days: 7 # a week\n");
    await writeFile(
      join(dir, "state.json"),
      JSON.stringify({ provider: "local", service: "file", options: { path: "state.yml" } }),
    );
    const { store } = await openState({ statePath: join(dir, "state.json") });
    if (!isWritable(store)) throw new Error("file store must be writable");
    await store.write("/services/docker/postgresql/default", { version: "16" });
    const text = await readFile(join(dir, "state.yml"), "utf8");
    expect(text).toContain("# laboratory defaults");
    expect(text).toContain("# a week");
    expect((await lookup(store, "/services/docker/postgresql/shop")).value).toEqual({ version: "16" });
    expect(await store.remove("/services/docker/postgresql/default")).toBe(true);
    expect(await store.remove("/services/docker/postgresql/default")).toBe(false);
    expect((await lookup(store, "/services/docker/postgresql/shop")).value).toEqual({ expiry_days: 7 });
  });
});
