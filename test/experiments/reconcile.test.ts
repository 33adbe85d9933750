import { spawn } from "node:child_process";
import { mkdir, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, onTestFinished, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { Experiments } from "../../src/experiments/index.js";
import { exampleRepo, experimentLab, viaRouter } from "../support/experiments.js";

test("a lost or damaged registry is rebuilt from what runs; gc does not take a running experiment for garbage", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  const created = await lab.experiments.create(
    { config: await loadConfig({ cwd: repo }), subdirectory: "" },
    { branch: "main" },
  );
  const database = join(lab.home, "experiments.db");
  const reopen = () => {
    const experiments = new Experiments({
      home: lab.home,
      state: lab.state,
      router: () => ({ port: lab.routerPort }),
    });
    onTestFinished(() => experiments.close().catch(() => undefined));
    return experiments;
  };
  // What only the record knew (the commit's subject) is not rebuilt from what runs.
  // (`existed` is create's answer, not the experiment's.)
  const recorded = (({ updatedAt: _u, createdAt: _c, services: _s, subject: _m, existed: _e, ...rest }) =>
    rest)(created);

  // Lost: the file is gone. The next command records the running app again, as it was.
  for (const suffix of ["", "-wal", "-shm"]) await rm(database + suffix, { force: true });
  const afterLoss = reopen();
  const [found] = await afterLoss.list("hello");
  expect(found).toMatchObject({ ...recorded, status: "running" });
  // The router follows the new file, and gc leaves the experiment alone.
  expect((await viaRouter(lab.routerPort, created.host)).status).toBe(200);
  expect(await afterLoss.collectGarbage(0)).toEqual([]);
  expect((await viaRouter(lab.routerPort, created.host)).status).toBe(200);

  // Damaged: the file is set aside, a new one started and filled from what runs.
  await afterLoss.close();
  for (const suffix of ["-wal", "-shm"]) await rm(database + suffix, { force: true });
  await writeFile(database, "not a database\n".repeat(400));
  const afterDamage = reopen();
  expect(await afterDamage.status("hello", "main")).toMatchObject({ ...recorded, status: "running" });
  expect((await readdir(lab.home)).some((f) => /^experiments\.db\.damaged-\d+$/.test(f))).toBe(true);

  await afterDamage.delete("hello", "main");
  expect(await reopen().list()).toEqual([]);
  expect((await viaRouter(lab.routerPort, created.host)).status).toBe(404);
});

test("a command that looks for running apps while another command replaces a release skips the release that is gone instead of failing", async () => {
  const lab = await experimentLab();
  const directory = join(lab.home, "experiments", "hello", "main");
  await mkdir(directory, { recursive: true });
  // What another command's update leaves for an instant: the old release's supervisor still in
  // the process table, its spec (listed a moment ago) already removed — a link to nothing keeps
  // it listed and gone at once.
  const spec = join(directory, "supervisor-4000.json");
  await symlink(join(directory, "removed.json"), spec);
  const supervisor = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60_000)", spec], {
    stdio: "ignore",
  });
  onTestFinished(() => {
    supervisor.kill("SIGKILL");
  });
  await new Promise((resolve) => supervisor.once("spawn", resolve));

  expect(await lab.experiments.list("hello")).toEqual([]);
});
