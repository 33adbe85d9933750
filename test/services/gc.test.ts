import { spawn } from "node:child_process";
import { access, mkdir } from "node:fs/promises";
import { expect, test } from "vitest";
import { LABELS } from "../../src/lab/labels.js";
import type { ServiceRecord } from "../../src/services/index.js";
import { runCli } from "../support/cli.js";
import { writeAndRead } from "../support/clients.js";
import { docker, localImage } from "../support/docker.js";
import { serviceConfig, testLaboratory } from "../support/laboratory.js";

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );
const alive = (pid: number) => exists(`/proc/${pid}`);

test("gc removes what crashes left (half-created services, unrecorded containers and server processes) and keeps the rest", async () => {
  const lab = await testLaboratory();
  const up = (experiment: string, services: Record<string, ReturnType<typeof serviceConfig>>) =>
    lab.services.up({ app: "shop", experiment, services });

  // Kept: a ready communal tenant.
  await up("main", { db: serviceConfig("local", "postgresql") });
  const main = await lab.services.environment("shop", "main");

  // A command that crashed after starting a dedicated server, before marking its service ready.
  const [cache] = await up("crashed", { cache: serviceConfig("local", "redis", "independent") });
  const record = (await lab.registry.read<ServiceRecord>(
    "services",
    "shop",
    "crashed",
    "cache",
  )) as ServiceRecord;
  await lab.registry.write({ ...record, status: "creating" }, "services", "shop", "crashed", "cache");
  const server = await lab.registry.read<{ details: { pid: number } }>("servers", cache?.server ?? "");

  // A container created by a command that died before recording it.
  const container = await docker.createContainer({
    Image: localImage("memcached"),
    name: `labtest-orphan-${lab.registry.id}`,
    Labels: { [LABELS.laboratory]: lab.registry.id, [LABELS.server]: "labtest-orphan" },
  });
  // A server process started just before a crash, with its directory but no record.
  const ghost = lab.registry.directory("servers", "labtest-ghost");
  await mkdir(ghost, { recursive: true });
  const process = spawn(globalThis.process.execPath, ["-e", "setTimeout(() => {}, 600000)", ghost], {
    detached: true,
    stdio: "ignore",
  });
  process.unref();

  const gc = await runCli(["--state", lab.statePath, "gc", "--grace", "0"], lab.home, {
    ...globalThis.process.env,
    LABTEST_HOME: lab.home,
  });
  expect(gc.code, gc.stderr).toBe(0);
  expect(gc.stdout.split("\n").filter(Boolean).sort()).toEqual(
    [
      "removed service shop/crashed/cache (left half-created)",
      `removed container labtest-orphan-${lab.registry.id} (no server record accounts for it)`,
      `removed server directory ${ghost} (no server record accounts for it)`,
    ].sort(),
  );
  expect(await alive(server?.details.pid ?? 0)).toBe(false);
  expect(await alive(process.pid ?? 0)).toBe(false);
  expect(await exists(ghost)).toBe(false);
  await expect(container.inspect()).rejects.toThrow(/no such container/i);
  expect(await writeAndRead("postgresql", main, "DB", "untouched")).toBe("untouched");

  const again = await runCli(["--state", lab.statePath, "gc", "--grace", "0"], lab.home, {
    ...globalThis.process.env,
    LABTEST_HOME: lab.home,
  });
  expect(again.stdout).toBe("nothing to remove\n");
});
