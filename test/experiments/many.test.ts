import { join } from "node:path";
import { execa } from "execa";
import { expect, test } from "vitest";
import { ExperimentRegistry } from "../../src/experiments/registry.js";
import type { ServiceRecord } from "../../src/services/index.js";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { testLaboratory } from "../support/laboratory.js";
import { gitRepo, writeFiles } from "../support/project.js";

const EXPERIMENTS = 300;
const BIN = join(import.meta.dirname, "../../bin/labtest.js");

test(`list and services list answer for ${EXPERIMENTS} experiments with two services each`, async () => {
  const lab = await testLaboratory();
  // Records only: what list and services list open per experiment is the point, not the servers.
  const server = (id: string, provisionType: ServerRecord["provisionType"]): ServerRecord => ({
    id,
    provider: "local",
    kind: "postgresql",
    provisionType,
    owner: null,
    admin: { host: "127.0.0.1", port: 1, user: "postgres", password: "secret" },
    details: { pid: 0 },
    createdAt: new Date().toISOString(),
  });
  const service = (experiment: string, name: string, serverId: string, shared: boolean): ServiceRecord => ({
    owner: { app: "shop", experiment, service: name },
    kind: "postgresql",
    provider: "local",
    provisionType: shared ? "shared" : "communal",
    server: serverId,
    shared: shared ? { app: "shop", experiment: "e0", service: "db" } : null,
    tenant: { database: `shop_${experiment}`, user: `shop_${experiment}`, password: "p", prefix: null },
    appEndpoint: { host: "127.0.0.1", port: 1 },
    status: "ready",
    createdAt: new Date().toISOString(),
  });
  await lab.registry.write(server("communal-db", "communal"), "servers", "communal-db");
  const registry = new ExperimentRegistry(join(lab.home, "experiments.db"));
  const now = new Date().toISOString();
  for (let i = 0; i < EXPERIMENTS; i++) {
    const name = `e${i}`;
    registry.insert({
      ...{ app: "shop", name, branch: name, release: "0123456789ab", runtime: "local", status: "running" },
      ...{ host: `shop-${name}.localhost`, port: 1, handle: "0", checkout: join(lab.home, "gone", name) },
      ...{ createdAt: now, updatedAt: now },
    });
    await lab.registry.write(service(name, "db", "communal-db", false), "services", "shop", name, "db");
    await lab.registry.write(service(name, "copy", "communal-db", true), "services", "shop", name, "copy");
  }
  registry.close();
  const project = await gitRepo("shop");
  await writeFiles(project, { ".labtest.yml": "labtest:\n  app_name: shop\n" });

  // As a user runs it, with fewer descriptors than the usual 1024: what it opens is bounded.
  const labtest = (...argv: string[]) =>
    execa("prlimit", ["--nofile=256", process.execPath, BIN, "--state", lab.statePath, ...argv], {
      cwd: project,
      env: { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: "1" },
      reject: false,
    });

  const list = await labtest("list", "--all");
  expect(list.stderr).toBe("");
  expect(list.exitCode).toBe(0);
  // A line per experiment, and under each what keeps it from serving: these servers are records only.
  const lines = list.stdout.split("\n");
  expect(lines.filter((line) => line.startsWith("shop/e"))).toHaveLength(EXPERIMENTS);
  expect(lines.filter((line) => line.startsWith("  ! "))).toEqual(
    Array(EXPERIMENTS).fill("  ! copy, db: its server is not running"),
  );

  const services = await labtest("services", "list");
  expect(services.stderr).toBe("");
  expect(services.exitCode).toBe(0);
  const serviceLines = services.stdout.split("\n");
  expect(serviceLines.filter((line) => line.startsWith("shop/e"))).toHaveLength(2 * EXPERIMENTS);
  expect(serviceLines.find((line) => line.startsWith("shop/e0/db:"))).toContain(
    `shared by ${Array.from({ length: EXPERIMENTS }, (_, i) => `shop/e${i}/copy`)
      .sort()
      .join(", ")}`,
  );
}, 120_000);
