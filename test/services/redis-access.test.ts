import { Redis, type RedisOptions } from "ioredis";
import { describe, expect, onTestFinished, test } from "vitest";
import type { ServiceRecord } from "../../src/services/index.js";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { serviceConfig, type TestLaboratory, testLaboratory } from "../support/laboratory.js";

/** A real client that neither retries nor queues, closed when the test ends. */
function client(target: string | RedisOptions): Redis {
  const options: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null };
  const redis =
    typeof target === "string" ? new Redis(target, options) : new Redis({ ...target, ...options });
  onTestFinished(() => redis.disconnect());
  return redis;
}

/**
 * Increments the plain key `counter` as a client of `target`; resolves to its value or to the
 * server's refusal (a refused login closes the connection, and ioredis reports it as an event).
 */
async function countWith(target: string | RedisOptions): Promise<number | string> {
  const redis = client(target);
  let refusal: Error | undefined;
  redis.on("error", (error: Error) => {
    refusal ??= error;
  });
  try {
    await redis.connect();
    return await redis.incr("counter");
  } catch (error) {
    return (refusal ?? (error as Error)).message;
  }
}

interface Logins {
  /** REDIS_URL as given. */
  url: string;
  /** The URL with the password and no user name. */
  passwordUrl: string;
  /** Host, port and password as options, as most libraries' examples do. */
  passwordOptions: RedisOptions;
}

/** The ways apps log in with what labtest hands them: the URL as given, and a password alone. */
function logins(env: Record<string, string>): Logins {
  const url = new URL(env.REDIS_URL as string);
  return {
    url: env.REDIS_URL as string,
    passwordUrl: `redis://:${url.password}@${url.host}${url.pathname}`,
    passwordOptions: { host: env.CACHE_HOST, port: Number(env.CACHE_PORT), password: env.CACHE_PASSWORD },
  };
}

async function upRedis(
  lab: TestLaboratory,
  experiment: string,
  config: ReturnType<typeof serviceConfig>,
): Promise<Record<string, string>> {
  await lab.services.up({ app: "shop", experiment, services: { cache: config } });
  // The test runs on the laboratory host: it uses the host-reachable variant of the app's variables.
  return lab.services.environment("shop", experiment, {}, { hostReachable: true });
}

describe.each(["local", "docker"] as const)("Redis on provider %s", (provider) => {
  test("an independent server is the experiment's own: a client with only a password writes any key, and so does one sharing it", async () => {
    const lab = await testLaboratory();
    const own = await upRedis(lab, "main", serviceConfig(provider, "redis", "independent"));
    // A sharer whose name sorts before the target's moves the published port of a docker server
    // on Docker 20.10 (its network becomes the gateway), which the recorded port does not follow.
    const sharing = await upRedis(
      lab,
      "review",
      serviceConfig(provider, "redis", "shared", { shared_experiment_name: "main" }),
    );

    const counted: Record<string, number | string> = {};
    for (const [experiment, env] of Object.entries({ main: own, review: sharing }))
      for (const [how, target] of Object.entries(logins(env)))
        counted[`${experiment}: ${how}`] = await countWith(target);
    expect(counted).toEqual({
      "main: url": 1,
      "main: passwordUrl": 2,
      "main: passwordOptions": 3,
      "review: url": 4,
      "review: passwordUrl": 5,
      "review: passwordOptions": 6,
    });
  });

  test("a communal tenant keeps to its prefix: its user and REDIS_PREFIX, never a plain key nor the password alone", async () => {
    const lab = await testLaboratory();
    const env = await upRedis(lab, "main", serviceConfig(provider, "redis", "communal"));
    const { url, passwordUrl, passwordOptions } = logins(env);

    expect(await countWith(url)).toMatch(/NOPERM/);
    expect(await countWith(passwordUrl)).toMatch(/WRONGPASS/);
    expect(await countWith(passwordOptions)).toMatch(/WRONGPASS/);
    // What the README tells such an app to do: log in with its user, write under its prefix.
    const prefixed = client({ ...passwordOptions, username: env.CACHE_USER, keyPrefix: env.REDIS_PREFIX });
    await prefixed.connect();
    expect(await prefixed.incr("counter")).toBe(1);
    expect(env.REDIS_PREFIX).toBe("shop:main:cache:");
  });
});

describe("an independent Redis brought up again", () => {
  /** An independent Redis of experiment main on the local provider, and its administrator. */
  async function independent() {
    const lab = await testLaboratory();
    const request = {
      app: "shop",
      experiment: "main",
      services: { cache: serviceConfig("local", "redis", "independent") },
    };
    await lab.services.up(request);
    const env = await lab.services.environment("shop", "main");
    const [record] = await lab.registry.list<ServiceRecord>("services", "shop", "main");
    const server = (await lab.registry.read<ServerRecord>("servers", record?.server ?? "")) as ServerRecord;
    const admin = client({ ...server.admin, username: server.admin.user ?? undefined } as RedisOptions);
    await admin.connect();
    return {
      lab,
      request,
      env,
      record: record as ServiceRecord,
      admin,
      adminPassword: server.admin.password,
    };
  }

  test("one made by an older labtest (a user limited to its prefix) is given the whole server", async () => {
    const { lab, request, env, admin, adminPassword } = await independent();
    const user = env.CACHE_USER as string;
    await admin.call(
      "ACL",
      "SETUSER",
      user,
      "reset",
      "on",
      `>${env.CACHE_PASSWORD}`,
      `~${env.REDIS_PREFIX}*`,
      "+@all",
    );
    await admin.call("ACL", "SETUSER", "default", "resetpass", `>${adminPassword}`);
    expect(await countWith(env.REDIS_URL as string)).toMatch(/NOPERM/);

    await lab.services.up(request);
    expect(await countWith(env.REDIS_URL as string)).toBe(1);
    expect(await countWith(logins(env).passwordOptions)).toBe(2);
  });

  test("one left half-made starts over empty, and its password still opens it", async () => {
    const { lab, request, env, record, admin } = await independent();
    await admin.set("written before the crash", "x");
    await lab.registry.write({ ...record, status: "creating" }, "services", "shop", "main", "cache");

    await lab.services.up(request);
    expect(await admin.exists("written before the crash")).toBe(0);
    expect(await countWith(logins(env).passwordUrl)).toBe(1);
  });
});
