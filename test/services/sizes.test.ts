import { Redis } from "ioredis";
import mysql from "mysql2/promise";
import pg from "pg";
import { expect, onTestFinished, test } from "vitest";
import type { ServiceStatus } from "../../src/services/index.js";
import { serviceConfig, testLaboratory } from "../support/laboratory.js";

/** Each service's size by name, as `status NAME` measures them. */
async function sizes(statuses: Promise<ServiceStatus[]>) {
  return Object.fromEntries((await statuses).map((s) => [s.name, s.size]));
}

/** Runs `work` with a client of the tenant at `url`, closed afterwards. */
async function asPostgresTenant(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function asMariadbTenant(url: string, sql: string): Promise<void> {
  const connection = await mysql.createConnection({ uri: url, multipleStatements: true });
  try {
    await connection.query(sql);
  } finally {
    await connection.end();
  }
}

function redisClient(url: string): Redis {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  onTestFinished(() => client.disconnect());
  return client;
}

test("full status measures each tenant: its database's bytes, its keys, nothing where the server cannot tell", async () => {
  const lab = await testLaboratory();
  await lab.services.up({
    app: "shop",
    experiment: "main",
    services: {
      db: serviceConfig("local", "postgresql", "communal"),
      maria: serviceConfig("local", "mariadb", "communal"),
      cache: serviceConfig("local", "redis", "communal"),
      own: serviceConfig("local", "redis", "independent"),
      memo: serviceConfig("local", "memcached", "communal"),
    },
  });
  // A neighbour's keys on the communal Redis are not the experiment's.
  await lab.services.up({
    app: "shop",
    experiment: "other",
    services: { cache: serviceConfig("local", "redis", "communal") },
  });
  const env = await lab.services.environment("shop", "main", {}, { hostReachable: true });
  const neighbour = await lab.services.environment("shop", "other", {}, { hostReachable: true });
  const measured = () => sizes(lab.services.list("shop", "main", { ping: true, sizes: true }));

  const before = await measured();
  expect(before.db).toMatchObject({ unit: "bytes" });
  expect(before.db?.amount).toBeGreaterThan(0);
  expect(before).toMatchObject({
    maria: { unit: "bytes", amount: 0 },
    cache: { unit: "keys", amount: 0 },
    own: { unit: "keys", amount: 0 },
    memo: null,
  });

  await asPostgresTenant(
    env.DB_URL as string,
    "CREATE TABLE rows AS SELECT n, repeat('x', 200) AS filler FROM generate_series(1, 10000) AS n",
  );
  await asMariadbTenant(
    env.MARIA_URL as string,
    "CREATE TABLE notes (n INT PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'a'), (2, 'b')",
  );
  const cache = redisClient(env.CACHE_URL as string);
  await cache.mset(`${env.CACHE_PREFIX}a`, "1", `${env.CACHE_PREFIX}b`, "2", `${env.CACHE_PREFIX}c`, "3");
  await redisClient(neighbour.CACHE_URL as string).set(`${neighbour.CACHE_PREFIX}x`, "1");
  await redisClient(env.OWN_URL as string).mset("plain", "1", "other", "2");

  const after = await measured();
  // 10,000 rows of 200 bytes and more: 2 MB at least.
  expect((after.db?.amount ?? 0) - (before.db?.amount ?? 0)).toBeGreaterThan(2_000_000);
  expect(after.maria?.amount).toBeGreaterThan(0);
  expect(after).toMatchObject({ cache: { unit: "keys", amount: 3 }, own: { unit: "keys", amount: 2 } });

  // Listing services measures nothing: it costs a login per service.
  expect((await lab.services.list("shop", "main", { ping: true }))[0]).not.toHaveProperty("size");
});
