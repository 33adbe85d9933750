// End-to-end create of the example app, from the command to its first 200, in one run:
// - labtest: `labtest create` (docker runtime; a communal PostgreSQL and an independent Redis on
//   Docker), then GET / through the laboratory's router with the experiment's Host;
// - Docker Compose (Debian's docker-compose; it has no --wait): `docker-compose up -d --build`
//   of an equivalent compose file (the same Dockerfile, a PostgreSQL and a Redis), then GET / on
//   the app's published port until the first 200.
// Alternating (order swapped each round) after one untimed run each; median of BENCH_CREATES.
// Everything is removed after each run, untimed, and at the end whatever happens.
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Docker from "dockerode";
import { execa } from "execa";
import getPort from "get-port";
import { stringify } from "yaml";
import { copyExample, localImage, runExampleInDocker } from "../test/support/example-app.js";
import { benchLaboratory, firstOk, labtestCreate, removeBenchLaboratory } from "./laboratory.js";
import { type Contender, median, raceSamples, seconds, spread } from "./race.js";

const CREATES = Number(process.env.BENCH_CREATES ?? 5);
const RUN = `${process.pid}${Date.now().toString(36)}`;
const KEEPER = `labtestbench-cache:${RUN}`;

/** The compose file equivalent to the example's labtest configuration on the docker runtime. */
function composeFile(context: string, appPort: number): string {
  const password = "bench";
  return stringify({
    services: {
      db: {
        image: localImage("postgresql"),
        environment: { POSTGRES_USER: "hello", POSTGRES_PASSWORD: password, POSTGRES_DB: "hello" },
      },
      cache: { image: localImage("redis") },
      app: {
        build: { context, args: { APP_NAME: "hello", EXPERIMENT: "compose", BRANCH_NAME: "main" } },
        environment: {
          PORT: "3000",
          EXPERIMENT: "compose",
          GREETING: "Hello from compose",
          DATABASE_URL: `postgres://hello:${password}@db:5432/hello`,
          DATABASE_NAME: "hello",
          REDIS_URL: "redis://cache:6379",
        },
        // The migration (before_start_command) runs first, retried until the database is up:
        // the quickest a compose file without healthchecks can do it.
        command: ["sh", "-c", "until node migrate.js; do sleep 0.2; done; exec node server.js"],
        depends_on: ["db", "cache"],
        ports: [`127.0.0.1:${appPort}:3000`],
      },
    },
  });
}

function composeContender(directory: string): Contender {
  return {
    name: "docker-compose up",
    async start(round) {
      const project = `labtestbench${RUN}r${round}`;
      const appPort = await getPort({ host: "127.0.0.1" });
      // Beside the build context, not in it: the context stays the same and its build cached.
      const file = `${directory}-${round}.yml`;
      await writeFile(file, composeFile(directory, appPort));
      const compose = (...args: string[]) => execa("docker-compose", ["-p", project, "-f", file, ...args]);
      const down = () => compose("down", "-v", "--rmi", "local", "--remove-orphans");
      try {
        await compose("up", "-d", "--build");
        await firstOk(appPort, "localhost");
      } catch (error) {
        await down().catch(() => undefined);
        throw error;
      }
      return down;
    },
  };
}

/** Debian's docker-compose, installed on first use (as the README's test setup installs its packages). */
async function ensureCompose(): Promise<void> {
  if ((await execa("docker-compose", ["version"], { reject: false })).exitCode === 0) return;
  const aptGet = (...args: string[]) =>
    process.getuid?.() === 0
      ? execa("apt-get", args, { env: { DEBIAN_FRONTEND: "noninteractive" } })
      : execa("sudo", ["DEBIAN_FRONTEND=noninteractive", "apt-get", ...args]);
  console.error("installing Debian's docker-compose …");
  await aptGet("update", "-q");
  await aptGet("install", "-y", "-q", "--no-install-recommends", "docker-compose");
}

async function main(): Promise<void> {
  await ensureCompose();
  const docker = new Docker();
  const lab = await benchLaboratory("create");
  const composeDirectory = join(lab.scratch, "compose");
  try {
    await mkdir(composeDirectory);
    await copyExample(composeDirectory);
    await runExampleInDocker(composeDirectory, { buildStep: false });

    // Other experiments of the app keep its layers on a laboratory; here an image kept for the
    // run does (compose's builder caches in images; labtest's BuildKit keeps a cache of its own).
    const keeper = await docker.buildImage(
      { context: composeDirectory, src: await readdir(composeDirectory) },
      { t: KEEPER, version: "1" },
    );
    await new Promise((resolve, reject) =>
      docker.modem.followProgress(keeper, (error) => (error ? reject(error) : resolve(undefined))),
    );
    const [ours = [], theirs = []] = await raceSamples(CREATES, [
      labtestCreate("labtest create", lab, lab.env),
      composeContender(composeDirectory),
    ]);
    console.log(
      `create of the example app (PostgreSQL, Redis, app image built from its Dockerfile) → first 200, median (min–max) of ${CREATES} (alternating, after one untimed run each):`,
    );
    console.log(
      `  labtest create ${spread(ours, seconds)}   docker-compose up ${spread(theirs, seconds)}   ratio labtest/compose ${(median(ours) / median(theirs)).toFixed(2)} (target ≤ 1.0)`,
    );
    console.log(
      "  labtest: git checkout of the branch, image build, tenant on the running communal PostgreSQL, a new Redis on the experiment's network, migration container, app, route;",
    );
    console.log(
      "  compose: image build, a new PostgreSQL (initdb) and Redis, migration retried every 0.2 s until PostgreSQL is up, app.",
    );
  } finally {
    await removeBenchLaboratory(lab);
    const compose = { filters: { label: [`com.docker.compose.project`] } };
    for (const c of await docker.listContainers({ all: true, ...compose }))
      if (c.Labels["com.docker.compose.project"]?.startsWith(`labtestbench${RUN}`))
        await docker.getContainer(c.Id).remove({ force: true, v: true });
    await docker
      .getImage(KEEPER)
      .remove()
      .catch(() => undefined);
  }
}

await main();
