import { access, mkdir, readFile, utimes } from "node:fs/promises";
import { join } from "node:path";
import { expect, onTestFinished, test } from "vitest";
import { ensureAppAccount, removeAppAccount } from "../../src/lab/accounts.js";
import { LABELS } from "../../src/lab/labels.js";
import type { ServiceRecord } from "../../src/services/index.js";
import { runCli } from "../support/cli.js";
import { docker, localImage } from "../support/docker.js";
import { serviceConfig, testLaboratory } from "../support/laboratory.js";

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );
const TEN_MINUTES_AGO = new Date(Date.now() - 10 * 60_000);

test("gc --dry-run says what it would remove and why, and removes nothing; gc then removes just that", async () => {
  const lab = await testLaboratory();
  const gc = (...argv: string[]) =>
    runCli(["--state", lab.statePath, "gc", ...argv], lab.home, { ...process.env, LABTEST_HOME: lab.home });

  // A service whose command died before it was ready.
  await lab.services.up({
    app: "shop",
    experiment: "crashed",
    services: { cache: serviceConfig("local", "redis", "independent") },
  });
  const record = (await lab.registry.read<ServiceRecord>(
    "services",
    "shop",
    "crashed",
    "cache",
  )) as ServiceRecord;
  await lab.registry.write({ ...record, status: "creating" }, "services", "shop", "crashed", "cache");
  // What a command left between making something and recording it.
  const container = await docker.createContainer({
    Image: localImage("memcached"),
    name: `labtest-orphan-${lab.registry.id}`,
    Labels: { [LABELS.laboratory]: lab.registry.id, [LABELS.server]: "labtest-orphan" },
  });
  const ghost = lab.registry.directory("servers", "labtest-ghost");
  const directory = join(lab.home, "experiments", "shop", "lost");
  await Promise.all([mkdir(ghost, { recursive: true }), mkdir(directory, { recursive: true })]);
  // The account of an experiment that is gone (the laboratory runs as root here).
  const accounts = join(lab.home, "experiments");
  const account = await ensureAppAccount(accounts, { app: "shop", name: "gone" }, join(lab.home, "account"));
  onTestFinished(() => removeAppAccount(accounts, { app: "shop", name: "gone" }));
  // The lock a killed command held, last refreshed ten minutes ago, and one a command holds now.
  const stale = join(lab.home, "locks", "experiment-shop-killed.lock");
  await mkdir(stale, { recursive: true });
  await utimes(stale, TEN_MINUTES_AGO, TEN_MINUTES_AGO);
  let release: () => void = () => undefined;
  const holding = lab.registry.withLock(
    "experiment-shop-busy",
    () => new Promise<void>((r) => (release = r)),
  );

  const expected = [
    ["service shop/crashed/cache", "left half-created"],
    [`container labtest-orphan-${lab.registry.id}`, "no server record accounts for it"],
    [`server directory ${ghost}`, "no server record accounts for it"],
    [`experiment directory ${directory}`, "no experiment owns it"],
    [`account ${account.name}`, "its experiment shop/gone is gone"],
    [`lock ${stale}`, "the command that held it is gone"],
  ];
  const dry = await gc("--dry-run", "--grace", "0");
  expect(dry.stderr).toBe("");
  expect(dry.code).toBe(0);
  expect(dry.stdout.split("\n").filter(Boolean).sort()).toEqual(
    expected.map(([what, why]) => `would remove ${what} (${why})`).sort(),
  );
  expect((await lab.services.list()).map((s) => s.status)).toEqual(["creating"]);
  expect((await container.inspect()).Id).toBe(container.id);
  for (const path of [ghost, directory, stale]) expect(await exists(path), path).toBe(true);
  expect(await readFile("/etc/passwd", "utf8")).toContain(`${account.name}:`);

  const json = await runCli(
    ["--state", lab.statePath, "--json", "gc", "--dry-run", "--grace", "0"],
    lab.home,
    { ...process.env, LABTEST_HOME: lab.home },
  );
  expect(JSON.parse(json.stdout)).toEqual({
    dryRun: true,
    removals: expect.arrayContaining(expected.map(([what, why]) => ({ what, why }))),
  });

  const real = await gc("--grace", "0");
  expect(real.stderr).toBe("");
  expect(real.stdout.split("\n").filter(Boolean).sort()).toEqual(
    expected.map(([what, why]) => `removed ${what} (${why})`).sort(),
  );
  expect(await lab.services.list()).toEqual([]);
  await expect(container.inspect()).rejects.toThrow(/no such container/i);
  for (const path of [ghost, directory, stale]) expect(await exists(path), path).toBe(false);
  expect(await readFile("/etc/passwd", "utf8")).not.toContain(`${account.name}:`);
  // The lock in use is not garbage.
  expect(await exists(join(lab.home, "locks", "experiment-shop-busy.lock"))).toBe(true);
  release();
  await holding;
  expect((await gc("--dry-run", "--grace", "0")).stdout).toBe("nothing to remove\n");
}, 120_000);
