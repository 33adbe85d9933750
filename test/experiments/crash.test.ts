import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, test } from "vitest";
import { processesUsing } from "../../src/lab/processes.js";
import { exampleRepo, experimentLab } from "../support/experiments.js";

const BIN = join(import.meta.dirname, "../../bin/labtest.js");

test("a create killed at any of 10 points leaves nothing that delete and gc do not remove", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const labtest = (...argv: string[]) =>
    execa(process.execPath, [BIN, "--state", lab.statePath, ...argv], { cwd: repo, env, reject: false });

  for (const delay of [50, 200, 400, 600, 800, 1000, 1300, 1600, 2000, 2600]) {
    const create = labtest("create", "main");
    await new Promise((resolve) => setTimeout(resolve, delay));
    create.kill("SIGKILL");
    await create;
    // Whatever the create got to, delete (if it was recorded) and gc clean up after it.
    await labtest("delete", "main");
    const gc = await labtest("gc", "--grace", "0");
    expect(gc.exitCode, `${delay} ms: ${gc.stderr}`).toBe(0);
    expect(await lab.experiments.list(), `${delay} ms`).toEqual([]);
    expect(await lab.services.list(), `${delay} ms`).toEqual([]);
    expect(await processesUsing(join(lab.home, "experiments")), `${delay} ms`).toEqual([]);
    expect(await readdir(join(lab.home, "experiments", "hello")).catch(() => []), `${delay} ms`).toEqual([]);
  }
  // And the experiment can be created after all that.
  expect((await labtest("create", "main")).exitCode).toBe(0);
}, 240_000);
