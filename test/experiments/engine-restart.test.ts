import { copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { expect, onTestFinished, test, vi } from "vitest";
import { runCli } from "../support/cli.js";
import { docker, localImage, RUN_ID, TEST_LABEL } from "../support/docker.js";
import { runExampleInDocker } from "../support/example-app.js";
import { answeredViaRouter, commit, exampleRepo, experimentLab, viaRouter } from "../support/experiments.js";
import { secondEngine } from "../support/second-engine.js";

const ROOT = join(import.meta.dirname, "../..");

/**
 * The example app's dependencies in an image of the machine's engine (the test's engine cannot
 * reach the npm registry): what its Dockerfile's first steps make, removed when the test ends.
 */
async function exampleDependencies(): Promise<string> {
  const tag = `labtest-test/hello-dependencies:${RUN_ID}`;
  const context = await mkdtemp(join(tmpdir(), "labtest-dependencies-"));
  onTestFinished(async () => {
    await docker
      .getImage(tag)
      .remove()
      .catch(() => undefined);
    await rm(context, { recursive: true, force: true });
  });
  await writeFile(
    join(context, "Dockerfile"),
    `FROM ${localImage("node")}\nWORKDIR /app\nCOPY package.json ./\nRUN npm install --omit=dev --no-audit --no-fund --loglevel=error\n`,
  );
  await copyFile(join(ROOT, "examples/hello/package.json"), join(context, "package.json"));
  const stream = await docker.buildImage(
    { context, src: ["Dockerfile", "package.json"] },
    { t: tag, labels: { [TEST_LABEL]: RUN_ID }, version: "2" },
  );
  await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))),
  );
  return tag;
}

/** `KEY=value` lines as services env prints them (values without quotes here) as an object. */
function variables(output: string): Record<string, string> {
  return Object.fromEntries(
    output
      .trim()
      .split("\n")
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

test("the Docker engine stops and starts under a running experiment: status, services env --host, the router and the data are right with no labtest command after it", async () => {
  const dependencies = await exampleDependencies();
  const engine = await secondEngine([dependencies, localImage("postgresql"), localImage("redis")]);
  // labtest, its builds and the router it starts all find the engine through DOCKER_HOST.
  vi.stubEnv("DOCKER_HOST", engine.host);
  onTestFinished(() => {
    vi.unstubAllEnvs();
  });
  // It takes the engine's first published port now and does not come back with the engine: the
  // experiment's servers are published on other ports after the restart, as on a busy laboratory.
  const first = await engine.docker.createContainer({
    Image: localImage("redis"),
    HostConfig: { PortBindings: { "6379/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] } },
  });
  await first.start();
  const lab = await experimentLab();
  const repo = await exampleRepo();
  await runExampleInDocker(repo, { buildStep: false });
  await writeFile(
    join(repo, "Dockerfile"),
    `FROM ${dependencies}\nCOPY . .\nEXPOSE 3000\nCMD ["node", "server.js"]\n`,
  );
  await commit(repo, "the example app in the test's engine");
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const cli = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);
  const host = "hello-main.localhost";

  const created = await cli("create");
  expect(created, created.stderr).toMatchObject({ code: 0 });
  expect((await viaRouter(lab.routerPort, host)).body).toContain("hello_main_db: 3");

  await engine.stop();
  const away = await cli("status", "main");
  expect(away, away.stderr).toMatchObject({ code: 0 });
  expect(away.stdout).toMatch(/^hello\/main: unreachable\n/);
  expect(away.stdout).toContain("the Docker engine of the laboratory is unreachable");
  const down = await viaRouter(lab.routerPort, host);
  expect(down.status).toBe(503);
  expect(down.body).toContain("the Docker engine of the laboratory is unreachable");

  await engine.start();
  // The containers come back with the engine (restart policy), published on ports it chooses
  // anew; the counts go on from where they were (an answer while a service was still starting
  // may have counted in one store and not the other).
  const page = await answeredViaRouter(lab.routerPort, host, 120);
  const [visits = 0, hits = 0] = [/hello_main_db: (\d+)/, /hits in Redis under \S*: (\d+)/].map((count) =>
    Number(count.exec(page)?.[1]),
  );
  expect(visits).toBeGreaterThan(3);
  expect(hits).toBeGreaterThan(3);
  // status asks the app once more.
  const status = await cli("status", "main");
  expect(status.stdout).toMatch(/^hello\/main: running\n/);
  expect(status.stdout).toMatch(/^ {4}cache: redis independent on docker, ready, \d+ keys? — /m);
  expect(status.stdout).toMatch(/^ {4}db: postgresql communal on docker, ready, [\d.]+ MB — /m);
  const printed = await cli("services", "env", "--host");
  expect(printed, printed.stderr).toMatchObject({ code: 0 });
  const reachable = variables(printed.stdout);
  const database = new pg.Client({ connectionString: reachable.DB_URL, connectionTimeoutMillis: 5000 });
  await database.connect();
  try {
    const { rows } = await database.query("SELECT count(*)::int AS n FROM visits");
    expect(rows[0]).toEqual({ n: visits + 1 });
  } finally {
    await database.end();
  }
  const redis = new Redis(reachable.CACHE_URL ?? "", {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 5000,
  });
  await redis.connect();
  try {
    expect(await redis.get(`${reachable.CACHE_PREFIX ?? ""}hits`)).toBe(String(hits + 1));
  } finally {
    redis.disconnect();
  }
  // Loading images into a second engine and restarting it take minutes on a loaded 2-core CI machine.
}, 480_000);
