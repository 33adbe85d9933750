// Service provisioning, in one run:
// (a) communal tenant creation (role + database) on native PostgreSQL and MariaDB servers
//     (provider local), the server already running: median of 20 `services up` calls;
// (b) an independent PostgreSQL and Redis on Docker, from `up` to ready, against
//     Testcontainers-node starting the same local image, alternating, median of 5 each.
// Everything it creates is labelled or kept under a scratch home, and removed even on failure.
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { serviceConfig } from "../src/config/resolve.js";
import { LABELS } from "../src/lab/labels.js";
import { Registry } from "../src/lab/registry.js";
import { Services } from "../src/services/index.js";
import { localProvider } from "../src/services/providers/local.js";
import type { ServerRecord } from "../src/services/providers/provider.js";
import { openState } from "../src/state/index.js";
import { type Contender, median, race, timed } from "./race.js";

const TENANTS = Number(process.env.BENCH_TENANTS ?? 20);
const STARTS = Number(process.env.BENCH_STARTS ?? 5);
const APP = "bench";
const IMAGES = { postgresql: "labtest-local/postgres:15", redis: "labtest-local/redis:7" } as const;
/** On Testcontainers' containers, so this run removes exactly its own. */
const RUN_LABEL = "labtest.bench-run";
const RUN = `${process.pid}-${Date.now()}`;

// Testcontainers without Ryuk: its image cannot be pulled here; the script removes its own containers.
process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
const { GenericContainer, Network, PullPolicy, Wait } = await import("testcontainers");

const ms = (n: number) => `${n.toFixed(n < 100 ? 1 : 0)} ms`;

/**
 * (a) Median time of `services up` creating one new tenant on a running communal server: as a
 * user meets it (the laboratory idle, its spare databases ready: `settled` is awaited, untimed,
 * before each call), and in a burst of back-to-back calls that outruns the spares.
 */
async function communalTenant(
  services: Services,
  kind: "postgresql" | "mariadb",
  experiments: Set<string>,
): Promise<{ idle: number; burst: number }> {
  const up = (experiment: string) => {
    experiments.add(experiment);
    return services.up({
      app: APP,
      experiment,
      services: { db: serviceConfig("local", kind, "communal") },
    });
  };
  await up(`warm-${kind}`); // starts (and for a new home initialises) the communal server
  const idle: number[] = [];
  for (let i = 0; i < TENANTS; i++) {
    await services.settled();
    idle.push(await timed(() => up(`${kind}-t${i}`)));
  }
  await services.settled();
  const burst: number[] = [];
  for (let i = 0; i < TENANTS; i++) burst.push(await timed(() => up(`${kind}-b${i}`)));
  return { idle: median(idle), burst: median(burst) };
}

function labtestContender(services: Services, kind: "postgresql" | "redis"): Contender {
  return {
    name: "labtest",
    async start(round) {
      const experiment = `i${round}`;
      const up = services.up({
        app: APP,
        experiment,
        services: { db: serviceConfig("docker", kind, "independent") },
      });
      // Taken down whether or not it came up (a failed up leaves a record that down removes).
      await up.catch(async (error) => {
        await services.down(APP, experiment).catch(() => undefined);
        throw error;
      });
      return () => services.down(APP, experiment);
    },
  };
}

type Started = Awaited<ReturnType<InstanceType<typeof GenericContainer>["start"]>>;

/**
 * Testcontainers starting a container; `ownNetwork`: on a network of its own, under an alias,
 * as labtest starts a dedicated server on its experiment's network (the same work).
 */
function testcontainersContender(
  name: string,
  container: () => InstanceType<typeof GenericContainer>,
  ownNetwork = false,
): Contender {
  return {
    name,
    async start() {
      const network = ownNetwork ? await new Network().start() : undefined;
      try {
        let definition = container()
          .withLabels({ [RUN_LABEL]: RUN })
          // The default policy, spelt out: pull only an image missing locally (these exist).
          .withPullPolicy(PullPolicy.defaultPolicy());
        if (network) definition = definition.withNetwork(network).withNetworkAliases("db");
        const started: Started = await definition.start();
        return async () => {
          await started.stop();
          await network?.stop();
        };
      } catch (error) {
        await network?.stop().catch(() => undefined);
        throw error;
      }
    },
  };
}

/** Removes what a run created: local servers by their records, Docker objects by their labels. */
async function cleanUp(docker: Docker, home: string, registry: Registry): Promise<void> {
  const failures: unknown[] = [];
  const attempt = (work: Promise<unknown>) => work.catch((error) => failures.push(error));
  const serversDirectory = join(home, "servers");
  const files = await readdir(serversDirectory).catch(() => [] as string[]);
  for (const file of files.filter((f) => f.endsWith(".json"))) {
    const record = JSON.parse(await readFile(join(serversDirectory, file), "utf8")) as ServerRecord;
    if (record.provider === "local") await attempt(localProvider(registry).remove(record));
  }
  const mine = (label: string, value: string) => ({ filters: { label: [`${label}=${value}`] } });
  for (const [label, value] of [
    [LABELS.laboratory, registry.id],
    [RUN_LABEL, RUN],
  ] as const) {
    for (const c of await docker.listContainers({ all: true, ...mine(label, value) }))
      await attempt(docker.getContainer(c.Id).remove({ force: true, v: true }));
  }
  for (const n of await docker.listNetworks(mine(LABELS.laboratory, registry.id)))
    await attempt(docker.getNetwork(n.Id).remove());
  const { Volumes } = await docker.listVolumes(mine(LABELS.laboratory, registry.id));
  for (const v of Volumes ?? []) await attempt(docker.getVolume(v.Name).remove());
  await rm(home, { recursive: true, force: true });
  if (failures.length > 0) console.error("cleanup: some removals failed:", ...failures);
}

async function main(): Promise<void> {
  const docker = new Docker();

  const home = await mkdtemp(join(tmpdir(), "labtest-bench-services-"));
  // Native servers run under their own accounts and must traverse the home.
  await chmod(home, 0o711);
  const registry = new Registry(home);
  await writeFile(
    join(home, "values.json"),
    JSON.stringify({
      "/services/docker/postgresql/default": { image: IMAGES.postgresql },
      "/services/docker/redis/default": { image: IMAGES.redis },
    }),
  );
  await writeFile(
    join(home, "state.json"),
    JSON.stringify({ provider: "local", service: "file", options: { path: "values.json" } }),
  );
  const { store } = await openState({ statePath: join(home, "state.json"), env: {}, cwd: home });
  const services = new Services({ home, state: store, docker });
  const communal = new Set<string>();
  try {
    const postgresqlTenant = await communalTenant(services, "postgresql", communal);
    const mariadbTenant = await communalTenant(services, "mariadb", communal);
    console.log(`communal tenant creation on native servers (provider local), median of ${TENANTS}:`);
    console.log(
      `  idle laboratory:  postgresql  ${ms(postgresqlTenant.idle)} (target < 100 ms)   mariadb  ${ms(mariadbTenant.idle)}`,
    );
    console.log(
      `  back-to-back:     postgresql  ${ms(postgresqlTenant.burst)}   mariadb  ${ms(mariadbTenant.burst)}   (more than the spare databases kept ready)`,
    );

    const [pgLabtest, pgPort, pgLog] = await race(STARTS, [
      labtestContender(services, "postgresql"),
      testcontainersContender("port wait", () =>
        new GenericContainer(IMAGES.postgresql)
          .withEnvironment({ POSTGRES_PASSWORD: "x" })
          .withExposedPorts(5432),
      ),
      testcontainersContender("log wait", () =>
        new GenericContainer(IMAGES.postgresql)
          .withEnvironment({ POSTGRES_PASSWORD: "x" })
          .withExposedPorts(5432)
          .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2)),
      ),
    ]);
    const redis = () => new GenericContainer(IMAGES.redis).withExposedPorts(6379);
    const [redisLabtest, redisPort, redisNetwork] = await race(STARTS, [
      labtestContender(services, "redis"),
      testcontainersContender("port wait", redis),
      testcontainersContender("port wait, own network", redis, true),
    ]);
    const ratio = (ours = Number.NaN, theirs = Number.NaN) => (ours / theirs).toFixed(2);
    console.log(
      `independent on docker, up → ready, median of ${STARTS} (alternating, after one untimed start each):`,
    );
    console.log(
      `  postgresql  labtest ${ms(pgLabtest ?? Number.NaN)}   testcontainers (port wait) ${ms(pgPort ?? Number.NaN)}   ratio labtest/testcontainers ${ratio(pgLabtest, pgPort)} (target ≤ 1.0)`,
    );
    console.log(
      `  postgresql  labtest ${ms(pgLabtest ?? Number.NaN)}   testcontainers (log wait)  ${ms(pgLog ?? Number.NaN)}   ratio labtest/testcontainers ${ratio(pgLabtest, pgLog)}`,
    );
    console.log(
      `  redis       labtest ${ms(redisLabtest ?? Number.NaN)}   testcontainers (port wait) ${ms(redisPort ?? Number.NaN)}   ratio labtest/testcontainers ${ratio(redisLabtest, redisPort)} (target ≤ 1.0)`,
    );
    console.log(
      `  redis       labtest ${ms(redisLabtest ?? Number.NaN)}   testcontainers (port wait, on a network of its own, like labtest) ${ms(redisNetwork ?? Number.NaN)}   ratio ${ratio(redisLabtest, redisNetwork)}`,
    );
    console.log(
      "  waits: labtest: a login as administrator (PostgreSQL SELECT 1, Redis PING), then it creates the tenant;",
    );
    console.log(
      "         port wait: Testcontainers' default, the host port accepts TCP and the port is bound in the container;",
    );
    console.log(
      '         log wait: "database system is ready to accept connections" logged twice (after initdb\'s own start).',
    );
  } finally {
    for (const experiment of communal) await services.down(APP, experiment).catch(() => undefined);
    await services.close();
    await store.close();
    await cleanUp(docker, home, registry);
  }
}

await main();
