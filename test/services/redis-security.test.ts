import { Redis } from "ioredis";
import { describe, expect, onTestFinished, test } from "vitest";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { serviceConfig, type TestLaboratory, testLaboratory } from "../support/laboratory.js";

/** A real client that has passed ioredis's ready check (INFO), closed when the test ends. */
async function connect(url: string): Promise<Redis> {
  const client = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => undefined);
  onTestFinished(() => client.disconnect());
  await new Promise((resolve, reject) => {
    client.once("ready", resolve);
    client.once("end", () => reject(new Error("the client never became ready")));
  });
  return client;
}

interface Tenant {
  client: Redis;
  user: string;
  prefix: string;
}

/** Experiments a and b of one app on one communal Redis, and the server's administrator. */
async function twoTenants(): Promise<{ lab: TestLaboratory; a: Tenant; b: Tenant; admin: Redis }> {
  const lab = await testLaboratory();
  const up = (experiment: string) =>
    lab.services.up({
      app: "shop",
      experiment,
      services: { kv: serviceConfig("local", "redis") },
    });
  const [record] = await up("a");
  await up("b");
  const tenant = async (experiment: string): Promise<Tenant> => {
    const env = await lab.services.environment("shop", experiment);
    const url = env.KV_URL as string;
    return { client: await connect(url), user: new URL(url).username, prefix: env.KV_PREFIX as string };
  };
  const server = (await lab.registry.read<ServerRecord>("servers", record?.server ?? "")) as ServerRecord;
  const { host, port, user, password } = server.admin;
  const admin = await connect(`redis://${user}:${encodeURIComponent(password ?? "")}@${host}:${port}/0`);
  return { lab, a: await tenant("a"), b: await tenant("b"), admin };
}

/** The commands of `commands` the client may run: each should have been refused by ACL. */
async function allowed(client: Redis, commands: string[][]): Promise<string[]> {
  const through: string[] = [];
  for (const [command, ...args] of commands)
    await client.call(command as string, ...args).then(
      () => through.push([command, ...args].join(" ")),
      (error: Error) => {
        if (!/NOPERM/.test(error.message)) through.push(`${[command, ...args].join(" ")}: ${error.message}`);
      },
    );
  return through;
}

const LIBRARY = (name: string, answer: string) =>
  `#!lua name=${name}\nredis.register_function('greet', function() return '${answer}' end)`;

describe("communal Redis tenants cannot reach past their prefix", () => {
  test("functions and script management are the administrator's: A can neither replace, list nor flush them", async () => {
    const { a, admin } = await twoTenants();
    await admin.call("FUNCTION", "LOAD", LIBRARY("shoplib", "the administrator"));
    const sha = (await admin.call("SCRIPT", "LOAD", "return 1")) as string;

    expect(
      await allowed(a.client, [
        ["FUNCTION", "LOAD", "REPLACE", LIBRARY("shoplib", "from A")],
        ["FUNCTION", "DELETE", "shoplib"],
        ["FUNCTION", "FLUSH"],
        ["FUNCTION", "LIST"],
        ["FUNCTION", "DUMP"],
        ["FUNCTION", "STATS"],
        ["FCALL", "greet", "0"],
        ["FCALL_RO", "greet", "0"],
        ["SCRIPT", "FLUSH"],
        ["SCRIPT", "KILL"],
        ["SCRIPT", "EXISTS", sha],
        ["SCRIPT", "DEBUG", "YES"],
      ]),
    ).toEqual([]);
    expect(await admin.call("FCALL", "greet", "0")).toBe("the administrator");
    expect(await admin.call("SCRIPT", "EXISTS", sha)).toEqual([1]);
  });

  test("no other logical database, and nothing that lists or counts what other tenants have", async () => {
    const { a, b } = await twoTenants();
    await a.client.set(`${a.prefix}k`, "a's");
    await b.client.set(`${b.prefix}k`, "b's");
    await b.client.subscribe(`${b.prefix}news`);

    expect(
      await allowed(a.client, [
        ["SELECT", "1"],
        ["SWAPDB", "0", "1"],
        ["MOVE", `${a.prefix}k`, "1"],
        ["COPY", `${a.prefix}k`, `${a.prefix}k2`, "DB", "1"],
        ["DBSIZE"],
        ["KEYS", "*"],
        ["SCAN", "0"],
        ["RANDOMKEY"],
        ["PUBSUB", "CHANNELS"],
        ["PUBSUB", "NUMPAT"],
        ["PUBSUB", "NUMSUB", `${b.prefix}news`],
        ["PUBSUB", "SHARDCHANNELS"],
        ["MEMORY", "STATS"],
        ["MEMORY", "DOCTOR"],
        ["MEMORY", "MALLOC-STATS"],
        ["MEMORY", "USAGE", `${b.prefix}k`],
        ["OBJECT", "ENCODING", `${b.prefix}k`],
        ["CLIENT", "LIST"],
        ["CLIENT", "KILL", "USER", b.user],
        // BCAST tracking announces every key written on the server, whatever the prefix.
        ["CLIENT", "TRACKING", "ON", "BCAST"],
        ["LATENCY", "LATEST"],
        ["SLOWLOG", "GET"],
        ["WAIT", "0", "1"],
        ["CLUSTER", "COUNTKEYSINSLOT", "0"],
        ["ACL", "LOG"],
      ]),
    ).toEqual([]);
    // What is confined to A's own keys stays available.
    expect(await a.client.call("MEMORY", "USAGE", `${a.prefix}k`)).toBeGreaterThan(0);
    expect(await a.client.call("OBJECT", "ENCODING", `${a.prefix}k`)).toBe("embstr");
    expect(await a.client.info("server")).toMatch(/redis_version:7/);
  });

  test("a script reaches only the keys it declares, and only the tenant's", async () => {
    const { a, b } = await twoTenants();
    await b.client.set(`${b.prefix}k`, "b's");
    const eval_ = (script: string, ...keys: string[]) => a.client.eval(script, keys.length, ...keys);

    await expect(eval_("return redis.call('GET', KEYS[1])", `${b.prefix}k`)).rejects.toThrow(/NOPERM/);
    await expect(eval_(`return redis.call('GET', '${b.prefix}k')`)).rejects.toThrow(/can't access/);
    await expect(eval_("return redis.call('SELECT', 1)")).rejects.toThrow(/can't run this command/);
    await expect(eval_("return redis.call('KEYS', '*')")).rejects.toThrow(/can't run this command/);
    expect(
      await eval_("redis.call('SET', KEYS[1], 'mine') return redis.call('GET', KEYS[1])", `${a.prefix}k`),
    ).toBe("mine");
    // Libraries that cache their scripts (redis-py, node-redis) load them, then call them by hash.
    const sha = (await a.client.call("SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])")) as string;
    expect(await a.client.evalsha(sha, 1, `${a.prefix}k`)).toBe("mine");
  });

  test("a tenant made under older rules gets the current ones when its experiment is brought up again", async () => {
    const { lab, a, admin } = await twoTenants();
    // The rules tenants had before functions and script management were denied.
    await admin.call(
      "ACL",
      "SETUSER",
      a.user,
      "+@all",
      "-@admin",
      "-@dangerous",
      "+info",
      "-scan",
      "-randomkey",
    );
    expect(await a.client.call("FUNCTION", "LIST")).toEqual([]);

    await lab.services.up({
      app: "shop",
      experiment: "a",
      services: { kv: serviceConfig("local", "redis") },
    });
    await expect(a.client.call("FUNCTION", "LIST")).rejects.toThrow(/NOPERM/);
  });

  test("taking an experiment down removes its keys from every logical database, and only its keys", async () => {
    const { lab, a, b, admin } = await twoTenants();
    // Tenants made before SELECT was denied may have written anywhere.
    const other = admin.duplicate({ db: 3 });
    onTestFinished(() => other.disconnect());
    for (const client of [admin, other]) {
      await client.set(`${a.prefix}left`, "a's");
      await client.set(`${b.prefix}kept`, "b's");
    }

    await lab.services.down("shop", "a");
    for (const client of [admin, other]) {
      expect(await client.exists(`${a.prefix}left`)).toBe(0);
      expect(await client.get(`${b.prefix}kept`)).toBe("b's");
    }
  });
});
