import { expect, test } from "vitest";
import { LABELS } from "../../src/lab/labels.js";
import type { ServiceRecord } from "../../src/services/index.js";
import { docker } from "../support/docker.js";
import { serviceConfig, testLaboratory } from "../support/laboratory.js";

test("down removes a dedicated docker server that a killed command made but did not record, with its volume", async () => {
  const lab = await testLaboratory();
  const request = {
    app: "shop",
    experiment: "crashed",
    services: { db: serviceConfig("docker", "postgresql", "independent") },
  };
  const [db] = await lab.services.up(request);
  // What a command killed between creating the server's container and recording it leaves: its
  // service recorded as being created, no record of the server.
  const record = (await lab.registry.read<ServiceRecord>(
    "services",
    "shop",
    "crashed",
    "db",
  )) as ServiceRecord;
  await lab.registry.write({ ...record, status: "creating" }, "services", "shop", "crashed", "db");
  await lab.registry.remove("servers", db?.server ?? "");
  const ofExperiment = {
    filters: {
      label: [
        `${LABELS.laboratory}=${lab.registry.id}`,
        `${LABELS.app}=shop`,
        `${LABELS.experiment}=crashed`,
      ],
    },
  };
  expect(await docker.listContainers({ all: true, ...ofExperiment })).toHaveLength(1);
  expect((await docker.listVolumes(ofExperiment)).Volumes).toHaveLength(1);

  expect(await lab.services.down("shop", "crashed")).toEqual(["db"]);
  expect(await docker.listContainers({ all: true, ...ofExperiment })).toEqual([]);
  expect((await docker.listVolumes(ofExperiment)).Volumes ?? []).toEqual([]);
  expect(await docker.listNetworks(ofExperiment)).toEqual([]);
}, 120_000);
