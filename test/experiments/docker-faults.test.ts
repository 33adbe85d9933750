import { describe, expect, test } from "vitest";
import { experimentNetwork } from "../../src/lab/docker.js";
import { LABELS } from "../../src/lab/labels.js";
import { ensureRouter, stopRouter } from "../../src/lab/router-control.js";
import { runCli } from "../support/cli.js";
import { docker } from "../support/docker.js";
import {
  answeredViaRouter,
  commit,
  dockerExampleRepo,
  experimentLab,
  viaRouter,
} from "../support/experiments.js";
import { gitRepo, writeFiles } from "../support/project.js";

/** An app without services on the local runtime: nothing of it is in Docker. */
async function plainRepo(): Promise<string> {
  const repo = await gitRepo("plain");
  await writeFiles(repo, {
    "server.js": `require("node:http").createServer((q, s) => s.end("plain\\n")).listen(Number(process.env.PORT));\n`,
    ".labtest.yml": "labtest:\n  start_command: node server.js\n",
  });
  await commit(repo, "a plain app");
  return repo;
}

/** A laboratory with the example app of `repo` created as experiment main, driven by the CLI. */
async function dockerExperiment() {
  const lab = await experimentLab();
  const repo = await dockerExampleRepo();
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const cli = (argv: string[], cwd = repo, extra: NodeJS.ProcessEnv = {}) =>
    runCli(["--state", lab.statePath, ...argv], cwd, { ...env, ...extra });
  const created = await cli(["create"]);
  expect(created, created.stderr).toMatchObject({ code: 0 });
  const ofMain = (service?: string) => ({
    filters: {
      label: [
        `${LABELS.laboratory}=${lab.registry.id}`,
        `${LABELS.experiment}=main`,
        service ? `${LABELS.service}=${service}` : `${LABELS.role}=app`,
      ],
    },
  });
  const container = async (service?: string) => {
    const [found] = await docker.listContainers({ all: true, ...ofMain(service) });
    if (!found) throw new Error(`no container of ${service ?? "the app"}`);
    return docker.getContainer(found.Id);
  };
  return { lab, repo, cli, container, host: "hello-main.localhost" };
}

/** Takes the experiment's network away as a user would: its containers disconnected, then removed. */
async function removeNetwork(name: string): Promise<void> {
  const network = docker.getNetwork(name);
  const { Containers } = (await network.inspect()) as { Containers?: Record<string, unknown> };
  for (const id of Object.keys(Containers ?? {})) await network.disconnect({ Container: id, Force: true });
  await network.remove();
}

const UNREACHABLE = "unix:///nonexistent.sock";

describe("the docker runtime under faults", () => {
  test("with the Docker engine unreachable, list, status and services list answer from the registry and say for which experiments it matters; the router says so", async () => {
    const { lab, cli, repo, container, host } = await dockerExperiment();
    const plain = await plainRepo();
    expect(await cli(["create"], plain)).toMatchObject({ code: 0 });
    const away = { DOCKER_HOST: UNREACHABLE };

    const list = await cli(["list", "--all"], repo, away);
    expect(list, list.stderr).toMatchObject({ code: 0, stderr: "" });
    const [hello, , plainLine] = list.stdout.split("\n");
    expect(list.stdout).toMatch(/^hello\/main {2}unreachable {2}/m);
    expect(list.stdout).toContain(
      `  ! app, cache, db: the Docker engine of the laboratory is unreachable (connect ENOENT /nonexistent.sock)\n`,
    );
    expect(hello).toMatch(/^hello\/main/);
    expect(plainLine).toMatch(/^plain\/main {2}running {2}/);
    expect(list.stdout.match(/!/g)).toHaveLength(1);

    const status = await cli(["status", "main"], repo, away);
    expect(status, status.stderr).toMatchObject({ code: 0, stderr: "" });
    expect(status.stdout).toMatch(/^hello\/main: unreachable\n/);
    expect(status.stdout).toContain("the Docker engine of the laboratory is unreachable");
    expect(status.stdout).toMatch(/^ {4}db: postgresql communal on docker, unreachable /m);
    const services = await cli(["services", "list"], repo, away);
    expect(services, services.stderr).toMatchObject({ code: 0 });
    expect(services.stdout).toMatch(/^hello\/main\/cache: redis on docker, independent, unreachable/m);
    const hostEnv = await cli(["services", "env", "--host", "-e", "main"], repo, away);
    expect(hostEnv.code).toBe(1);
    expect(hostEnv.stderr).toContain("the Docker engine of the laboratory is unreachable");

    // The router of a laboratory whose engine is away: the app does not answer, and it says why.
    await (await container()).stop({ t: 0 });
    await stopRouter(lab.home);
    const saved = process.env.DOCKER_HOST;
    process.env.DOCKER_HOST = UNREACHABLE;
    try {
      await ensureRouter(lab.home, lab.routerPort);
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
    const page = await viaRouter(lab.routerPort, host);
    expect(page.status).toBe(503);
    expect(page.headers["x-labtest-router"]).toBe("app-unreachable");
    expect(page.body).toContain("the Docker engine of the laboratory is unreachable");
    expect((await viaRouter(lab.routerPort, "plain-main.localhost")).body).toBe("plain\n");
  });

  test("containers and networks removed behind labtest's back: status, services list and the router tell the truth; services up and update repair", async () => {
    const { lab, cli, container, host } = await dockerExperiment();
    const network = experimentNetwork(lab.registry.id, "hello", "main");
    expect((await viaRouter(lab.routerPort, host)).body).toContain("hello_main_db: 3");

    // Host ports: a restarted server publishes on a new port, and env --host says which.
    const cache = await container("cache");
    await cache.restart({ t: 0 });
    const published = (await cache.inspect()).NetworkSettings.Ports["6379/tcp"]?.[0]?.HostPort;
    const env = await cli(["services", "env", "--host"]);
    expect(env, env.stderr).toMatchObject({ code: 0 });
    expect(env.stdout).toContain(`CACHE_PORT=${published}\n`);

    // The network goes: status says so, the router too, and services up puts it all back.
    await removeNetwork(network);
    const status = await cli(["status", "main"]);
    expect(status.stdout).toMatch(/^hello\/main: unreachable\n/);
    expect(status.stdout).toContain(`not on its network ${network}`);
    const listed = await cli(["services", "list"]);
    expect(listed.stdout).toMatch(/^hello\/main\/cache: redis on docker, independent, unreachable/m);
    const page = await viaRouter(lab.routerPort, host);
    expect(page.status).toBe(503);
    expect(page.body).toContain(`not on its network ${network}`);
    const up = await cli(["services", "up"]);
    expect(up, up.stderr).toMatchObject({ code: 0 });
    expect(await answeredViaRouter(lab.routerPort, host, 60)).toContain("hello_main_db: 4");
    expect((await cli(["status", "main"])).stdout).toMatch(/^hello\/main: running\n/);

    // Again, repaired by update this time.
    await removeNetwork(network);
    const update = await cli(["update", "main"]);
    expect(update, update.stderr).toMatchObject({ code: 0 });
    expect((await viaRouter(lab.routerPort, host)).body).toContain("hello_main_db: 8");

    // A server that runs but does not answer (its processes frozen): services list asks it.
    await (await container("cache")).pause();
    const frozen = await cli(["services", "list"]);
    await (await container("cache")).unpause();
    expect(frozen.stdout).toMatch(
      /^hello\/main\/cache: redis on docker, independent, unreachable — .*\n {2}! it does not answer/m,
    );

    // A server's container removed: services list and status say it is gone, not ready.
    await (await container("cache")).remove({ force: true });
    const gone = await cli(["services", "list"]);
    expect(gone.stdout).toMatch(
      /^hello\/main\/cache: redis on docker, independent, stopped — .*\n {2}! its container .* is gone/m,
    );
    const withoutCache = await cli(["status", "main"]);
    expect(withoutCache.stdout).toMatch(/^ {4}cache: redis independent on docker, stopped /m);
    expect(withoutCache.stdout).toContain("is gone");

    // The app's container removed: status says so.
    await (await container()).remove({ force: true });
    const noApp = await cli(["status", "main"]);
    expect(noApp.stdout).toMatch(/^hello\/main: stopped\n/);
    expect(noApp.stdout).toContain("its container is gone");
  });
});
