import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { onTestFinished } from "vitest";

export { serviceConfig } from "../../src/config/resolve.js";

import { LABELS } from "../../src/lab/labels.js";
import { Registry } from "../../src/lab/registry.js";
import { initAgeIdentity, Secrets } from "../../src/secrets/index.js";
import { Services } from "../../src/services/index.js";
import { localProvider } from "../../src/services/providers/local.js";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { openState, type StateStore } from "../../src/state/index.js";
import { docker, localImage } from "./docker.js";
import { scratchDir } from "./project.js";

/** State defaults that point the docker provider at the locally built images (nothing is pulled here). */
export const LOCAL_IMAGES: Record<string, unknown> = {
  "/services/docker/postgresql/default": { image: localImage("postgresql") },
  "/services/docker/mariadb/default": { image: localImage("mariadb") },
  "/services/docker/mysql/default": { image: localImage("mariadb") },
  "/services/docker/redis/default": { image: localImage("redis") },
  "/services/docker/memcached/default": { image: localImage("memcached") },
  "/services/docker/rabbitmq/default": { image: localImage("rabbitmq") },
};

export interface TestLaboratory {
  home: string;
  statePath: string;
  state: StateStore;
  services: Services;
  registry: Registry;
}

/**
 * A laboratory in a scratch home whose state holds the local images as docker defaults, plus
 * `state` (absolute key → value).
 * When the test ends, pass or fail, everything it made goes: its servers (processes,
 * containers, volumes) and every Docker object (containers, volumes, images, networks) labelled
 * with its laboratory id.
 */
export async function testLaboratory(state: Record<string, unknown> = {}): Promise<TestLaboratory> {
  const home = await scratchDir("labtest-lab-");
  // Native servers run under their own accounts and must traverse the home.
  await chmod(home, 0o711);
  const statePath = join(home, "state.json");
  await writeFile(join(home, "state-values.json"), JSON.stringify({ ...LOCAL_IMAGES, ...state }));
  await writeFile(
    statePath,
    JSON.stringify({ provider: "local", service: "file", options: { path: "state-values.json" } }),
  );
  const opened = await openState({ statePath, env: {}, cwd: home });
  const services = new Services({ home, state: opened.store });
  const registry = new Registry(home);
  onTestFinished(async () => {
    await services.close();
    await opened.store.close();
    await removeLaboratory(registry);
  });
  return { home, statePath, state: opened.store, services, registry };
}

/**
 * Gives the laboratory an age identity and puts its recipient at /secrets in the laboratory's
 * state; returns what encrypts for it (as a developer's labtest would, from the state alone).
 */
export async function ageSecrets(lab: TestLaboratory): Promise<Secrets> {
  const { recipient } = await initAgeIdentity(lab.home);
  const values = join(lab.home, "state-values.json");
  await writeFile(
    values,
    JSON.stringify({
      ...JSON.parse(await readFile(values, "utf8")),
      "/secrets": { provider: "local", service: "age", options: { recipients: [recipient] } },
    }),
  );
  return new Secrets({ state: lab.state, home: await scratchDir("labtest-dev-") });
}

async function removeLaboratory(registry: Registry): Promise<void> {
  const local = localProvider(registry);
  for (const server of await registry.list<ServerRecord>("servers"))
    if (server.provider === "local") await local.remove(server).catch(() => undefined);
  const filters = { label: [`${LABELS.laboratory}=${registry.id}`] };
  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
  const { Volumes } = await docker.listVolumes({ filters });
  await Promise.all(
    (Volumes ?? []).map((v) =>
      docker
        .getVolume(v.Name)
        .remove()
        .catch(() => undefined),
    ),
  );
  for (const image of await docker.listImages({ filters }))
    await docker
      .getImage(image.Id)
      .remove({ force: true })
      .catch(() => undefined);
  const networks = await docker.listNetworks({ filters });
  await Promise.all(
    networks.map((n) =>
      docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined),
    ),
  );
}
