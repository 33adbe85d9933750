import { readdir } from "node:fs/promises";
import { expect, test } from "vitest";
import { inspectContainer } from "../../src/lab/docker.js";
import { Provisioner } from "../../src/services/provision.js";
import { writeAndRead } from "../support/clients.js";
import { docker, localImage } from "../support/docker.js";
import { serviceConfig, testLaboratory } from "../support/laboratory.js";

const children = (path: string) => readdir(path).catch(() => [] as string[]);

test("taking an experiment's last service down leaves no empty directories of it or of its app", async () => {
  const lab = await testLaboratory();
  const services = { cache: serviceConfig("local", "redis") };
  for (const experiment of ["one", "two"]) await lab.services.up({ app: "shop", experiment, services });

  await lab.services.down("shop", "one");
  expect(await children(lab.registry.directory("services", "shop"))).toEqual(["two"]);
  await lab.services.down("shop", "two");
  expect(await children(lab.registry.directory("services"))).toEqual([]);
  // And the next experiment of the app is recorded as before.
  await lab.services.up({ app: "shop", experiment: "three", services });
  expect((await lab.services.list()).map((s) => `${s.experiment}/${s.name}`)).toEqual(["three/cache"]);
});

test("a communal docker server is named for the version its image runs", async () => {
  // The state's image is tagged 15 while the kind's default version is another.
  const lab = await testLaboratory();
  const [db] = await lab.services.up({
    app: "shop",
    experiment: "main",
    services: { db: serviceConfig("docker", "postgresql") },
  });
  const tag = localImage("postgresql").split(":").pop();
  expect(db?.server).toMatch(new RegExp(`^labtest-communal-postgresql-${tag}-[0-9a-f]+$`));
  expect((await inspectContainer(docker, db?.server ?? ""))?.Config.Image).toBe(localImage("postgresql"));
});

test("a communal server recorded under its former name is still the one experiments use", async () => {
  const lab = await testLaboratory();
  const request = (experiment: string) => ({
    app: "shop",
    experiment,
    services: { db: serviceConfig("docker", "postgresql") },
  });
  // What an earlier labtest made: the same server, named for the kind's default version.
  const earlier = new Provisioner({ home: lab.home, state: lab.state });
  const prepared = await earlier.prepare(request("old"), "db");
  const spec = prepared.spec as NonNullable<typeof prepared.spec>;
  const formerId = spec.id.replace(/-postgresql-[^-]+-/, `-postgresql-${spec.module.container?.version}-`);
  expect(formerId).not.toBe(spec.id);
  await earlier.up({ ...prepared, spec: { ...spec, id: formerId } });
  await earlier.servers.admins.close();

  const [db] = await lab.services.up(request("new"));
  expect(db?.server).toBe(formerId);
  expect(await inspectContainer(docker, spec.id)).toBeUndefined();
  for (const experiment of ["old", "new"]) {
    const env = await lab.services.environment("shop", experiment, {}, { hostReachable: true });
    expect(await writeAndRead("postgresql", env, "DB", experiment)).toBe(experiment);
  }
});
