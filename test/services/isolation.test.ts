import pg from "pg";
import { describe, expect, test } from "vitest";
import { type ClientKind, writeAndRead } from "../support/clients.js";
import { serviceConfig, testLaboratory } from "../support/laboratory.js";

describe("communal tenants are isolated", () => {
  test.each(["postgresql", "mariadb", "redis"] as ClientKind[])(
    "%s: A's credentials cannot reach B's data, and dropping A keeps B's",
    async (kind) => {
      const lab = await testLaboratory();
      const request = (experiment: string) => ({
        app: "shop",
        experiment,
        services: { store: serviceConfig("local", kind) },
      });
      const [a] = await lab.services.up(request("a"));
      const [b] = await lab.services.up(request("b"));
      expect(a?.server).toBe(b?.server);
      const envA = await lab.services.environment("shop", "a");
      const envB = await lab.services.environment("shop", "b");
      expect(await writeAndRead(kind, envB, "STORE", "b's secret")).toBe("b's secret");

      // A's user, aimed at B's database (or B's key prefix), is refused.
      const crossed = {
        ...envA,
        STORE_URL: envA.STORE_URL?.replace(
          /\/[^/]*$/,
          `/${kind === "redis" ? "0" : envB.STORE_NAME}`,
        ) as string,
        STORE_PREFIX: envB.STORE_PREFIX ?? "",
      };
      await expect(writeAndRead(kind, crossed, "STORE", "intrusion")).rejects.toThrow(
        /denied|permission|NOPERM|access/i,
      );

      expect(await lab.services.down("shop", "a")).toEqual(["store"]);
      await expect(writeAndRead(kind, envA, "STORE", "gone")).rejects.toThrow();
      expect(await writeAndRead(kind, envB, "STORE", "still here")).toBe("still here");
    },
  );

  test("GRANT wildcards do not leak: a MariaDB tenant whose name differs only where another has _ stays out", async () => {
    const lab = await testLaboratory();
    // Database names x_a_b_db (experiment a, service b_db) and x_axb_db (experiment axb, service
    // db): an unescaped grant on the first would match the second.
    const request = (experiment: string, service: string) => ({
      app: "x",
      experiment,
      services: { [service]: serviceConfig("local", "mariadb") },
    });
    await lab.services.up(request("a", "b_db"));
    await lab.services.up(request("axb", "db"));
    const first = await lab.services.environment("x", "a");
    const second = await lab.services.environment("x", "axb");
    expect([first.B_DB_NAME, second.DB_NAME]).toEqual(["x_a_b_db", "x_axb_db"]);
    const crossed = { DB_URL: first.B_DB_URL?.replace(/\/[^/]*$/, `/${second.DB_NAME}`) as string };
    await expect(writeAndRead("mariadb", crossed, "DB", "intrusion")).rejects.toThrow(/denied/i);
  });
});

describe("concurrent ups on one communal server", () => {
  test("10 experiments at once: all succeed, 10 tenants; 5 ups of one experiment: one tenant", async () => {
    const lab = await testLaboratory();
    const request = (experiment: string) => ({
      app: "shop",
      experiment,
      services: { db: serviceConfig("local", "postgresql") },
    });
    const experiments = Array.from({ length: 10 }, (_, i) => `e${i}`);
    const results = await Promise.all(experiments.map((e) => lab.services.up(request(e))));
    expect(new Set(results.map(([s]) => s?.server)).size).toBe(1);
    const same = await Promise.all(Array.from({ length: 5 }, () => lab.services.up(request("same"))));
    expect(same.every(([s]) => s?.status === "ready")).toBe(true);

    const server = await lab.registry.read<{
      admin: { host: string; port: number; user: string; password: string };
    }>("servers", results[0]?.[0]?.server ?? "");
    const admin = new pg.Client({ ...server?.admin, database: "postgres" });
    await admin.connect();
    try {
      const { rows } = await admin.query(
        "SELECT datname FROM pg_database WHERE datname LIKE 'shop\\_%' ORDER BY 1",
      );
      expect(rows.map((r) => r.datname)).toEqual([...experiments.map((e) => `shop_${e}_db`), "shop_same_db"]);
    } finally {
      await admin.end();
    }
    const envs = await Promise.all(["same", "same"].map((e) => lab.services.environment("shop", e)));
    expect(envs[0]).toEqual(envs[1]);
  });
});
