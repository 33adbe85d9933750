import { access } from "node:fs/promises";
import { expect, test } from "vitest";
import { inspectContainer } from "../../src/lab/docker.js";
import { Services } from "../../src/services/index.js";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { runCli } from "../support/cli.js";
import { writeAndRead } from "../support/clients.js";
import { docker } from "../support/docker.js";
import { serviceConfig, testLaboratory } from "../support/laboratory.js";

const alive = (pid: number) =>
  access(`/proc/${pid}`).then(
    () => true,
    () => false,
  );

test("servers list shows each server; stop and remove are refused while it has tenants, unless --force", async () => {
  const lab = await testLaboratory();
  const labtest = (...argv: string[]) =>
    runCli(["--state", lab.statePath, ...argv], lab.home, { ...process.env, LABTEST_HOME: lab.home });
  // Each step is a command of its own, as a user runs them.
  const command = async <T>(use: (services: Services) => Promise<T>): Promise<T> => {
    const services = new Services({ home: lab.home, state: lab.state });
    try {
      return await use(services);
    } finally {
      await services.close();
    }
  };
  const up = (experiment: string, provisionType: "communal" | "independent") =>
    command((services) =>
      services.up({
        app: "shop",
        experiment,
        services: { cache: serviceConfig("local", "redis", provisionType) },
      }),
    );
  const [one] = await up("one", "communal");
  const [two] = await up("two", "independent");
  const communal = one?.server ?? "";
  const dedicated = two?.server ?? "";
  const pid = async (id: string) =>
    Number((await lab.registry.read<ServerRecord>("servers", id))?.details.pid ?? 0);
  const communalPid = await pid(communal);

  const listed = await labtest("servers", "list");
  expect(listed.stderr).toBe("");
  expect(listed.stdout.split("\n").filter(Boolean).sort()).toEqual(
    [
      `${communal}: redis on local, communal, 1 tenant, running`,
      `${dedicated}: redis on local, independent, 1 tenant, running`,
    ].sort(),
  );

  for (const verb of ["stop", "remove"]) {
    const refused = await labtest("servers", verb, communal);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`server ${communal} has 1 tenant`);
    expect(refused.stderr).toContain("used by shop/one/cache");
    expect(refused.stderr).toContain("--force");
  }
  expect(await alive(communalPid)).toBe(true);
  const env = await command((services) => services.environment("shop", "one"));
  expect(await writeAndRead("redis", env, "CACHE", "still served")).toBe("still served");

  // Its last tenant gone, a communal server stays until someone stops or removes it.
  await command((services) => services.down("shop", "one"));
  expect((await labtest("servers", "list", communal)).stdout).toBe(
    `${communal}: redis on local, communal, 0 tenants, running\n`,
  );
  expect((await labtest("servers", "stop", communal)).stdout).toBe(`stopped ${communal}\n`);
  expect(await alive(communalPid)).toBe(false);
  expect((await labtest("servers", "list", communal)).stdout).toBe(
    `${communal}: redis on local, communal, 0 tenants, stopped\n`,
  );
  // A stopped server starts again for the next experiment that needs it.
  await up("three", "communal");
  const three = await command((services) => services.environment("shop", "three"));
  expect(await writeAndRead("redis", three, "CACHE", "back")).toBe("back");
  await command((services) => services.down("shop", "three"));

  // Without an id: every server no experiment uses.
  expect((await labtest("servers", "remove")).stdout).toBe(`removed ${communal}\n`);
  expect(await lab.registry.read("servers", communal)).toBeUndefined();
  const dedicatedPid = await pid(dedicated);
  expect((await labtest("servers", "remove", dedicated, "--force")).stdout).toBe(`removed ${dedicated}\n`);
  expect(await alive(dedicatedPid)).toBe(false);
  expect(JSON.parse((await labtest("--json", "servers", "list")).stdout)).toEqual({ servers: [] });

  const unknown = await labtest("servers", "stop", "nosuch");
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain("no server nosuch");
  const forceAll = await labtest("servers", "remove", "--force");
  expect(forceAll.code).toBe(2);
  expect(forceAll.stderr).toContain("--force needs a server");
});

test("a communal docker server no experiment uses is stopped and removed with its container", async () => {
  const lab = await testLaboratory();
  const labtest = (...argv: string[]) =>
    runCli(["--state", lab.statePath, ...argv], lab.home, { ...process.env, LABTEST_HOME: lab.home });
  const services = { cache: serviceConfig("docker", "redis") };
  const [cache] = await lab.services.up({ app: "shop", experiment: "one", services });
  await lab.services.down("shop", "one");
  const id = cache?.server ?? "";

  expect((await labtest("servers", "stop")).stdout).toBe(`stopped ${id}\n`);
  expect((await inspectContainer(docker, id))?.State.Running).toBe(false);
  expect((await labtest("servers", "list")).stdout).toBe(
    `${id}: redis on docker, communal, 0 tenants, stopped\n`,
  );
  expect((await labtest("servers", "remove", id)).stdout).toBe(`removed ${id}\n`);
  expect(await inspectContainer(docker, id)).toBeUndefined();
});
