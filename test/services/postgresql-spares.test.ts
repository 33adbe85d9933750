import pg from "pg";
import { expect, onTestFinished, test } from "vitest";
import { spareDatabases } from "../../src/services/kinds/postgresql-spares.js";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { serviceConfig, testLaboratory } from "../support/laboratory.js";

test("two labtest processes claiming and refilling one server's spares never update a database row at once", async () => {
  const lab = await testLaboratory();
  const [status] = await lab.services.up({
    app: "shop",
    experiment: "main",
    services: { db: serviceConfig("local", "postgresql") },
  });
  const { admin } = (await lab.registry.read<ServerRecord>("servers", status?.server ?? "")) as ServerRecord;
  const connect = () => {
    const pool = new pg.Pool({
      host: admin.host,
      port: admin.port,
      user: admin.user ?? "postgres",
      password: admin.password ?? "",
      database: "postgres",
      max: 2,
    });
    onTestFinished(() => pool.end());
    return pool;
  };
  // Two processes (a create and an update, say) share the server: one refills while the other claims.
  const refilling = spareDatabases(connect(), 3);
  const claiming = spareDatabases(connect(), 3);
  const claimed: string[] = [];
  for (let round = 0; round < 20; round++) {
    // With no spare left, the claim chases the one the refill is making.
    refilling.refill();
    const database = `claimed_${round}`;
    while (!(await claiming.claim(database)));
    claimed.push(database);
    await refilling.settled();
    for (let drained = 0; await claiming.claim(`${database}_${drained}`); drained++)
      claimed.push(`${database}_${drained}`);
  }
  // A claimed spare lost to the race would be a tenant without a database; none is.
  const { rows } = await connect().query<{ datname: string }>(
    "SELECT datname FROM pg_database WHERE datname LIKE 'claimed_%'",
  );
  expect(rows.map((r) => r.datname).sort()).toEqual(claimed.sort());
  expect(claimed.length).toBeGreaterThanOrEqual(20);
});
