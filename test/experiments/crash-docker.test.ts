import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import pg from "pg";
import { expect, test } from "vitest";
import { LABELS } from "../../src/lab/labels.js";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { runCli } from "../support/cli.js";
import { docker } from "../support/docker.js";
import {
  commit,
  dockerExampleRepo,
  type ExperimentLab,
  experimentLab,
  setConfig,
} from "../support/experiments.js";

const BIN = join(import.meta.dirname, "../../bin/labtest.js");

/**
 * Where a command is killed: once it reports this step (and `after` ms more). Steps rather than
 * delays, so that each kill lands in its step on a slow machine as on a fast one.
 */
type KillPoint = { step: string; after?: number };

/** Points of a create: checkout, services, build container, image build, migration, start, answer. */
const CREATE_KILLS: KillPoint[] = [
  { step: "checking out main" },
  { step: "bringing services up", after: 300 },
  { step: "running app_build_command", after: 800 },
  { step: "building the image" },
  { step: "running before_start_command", after: 300 },
  { step: "waiting for the app to answer" },
];

/**
 * Points of an update of a running experiment: before its release switches (the image's tag stays
 * on the running release's image), and while the old release is retired.
 */
const UPDATE_KILLS: (KillPoint & { switched: boolean })[] = [
  { step: "running before_start_command", after: 300, switched: false },
  { step: "waiting for the app to answer", switched: false },
  { step: "stopping the previous release", switched: true },
];

/** What labtest left on the engine of `laboratory`, but for the communal servers (kept on purpose). */
async function dockerLeftovers(laboratory: string): Promise<string[]> {
  const filters = { label: [`${LABELS.laboratory}=${laboratory}`] };
  const communal = (labels: Record<string, string> | undefined) =>
    labels?.[LABELS.provisionType] === "communal";
  return [
    ...(await docker.listContainers({ all: true, filters }))
      .filter((c) => !communal(c.Labels))
      .map((c) => `container ${c.Names[0]}`),
    ...((await docker.listVolumes({ filters })).Volumes ?? [])
      .filter((v) => !communal(v.Labels))
      .map((v) => `volume ${v.Name}`),
    ...(await docker.listImages({ filters })).map((i) => `image ${i.RepoTags?.[0] ?? i.Id}`),
    ...(await docker.listNetworks({ filters })).map((n) => `network ${n.Name}`),
  ];
}

/** The tenants (databases and roles) of app `hello` left on the laboratory's communal PostgreSQL servers. */
async function tenantsLeft(lab: ExperimentLab): Promise<string[]> {
  const left: string[] = [];
  for (const server of await lab.registry.children<ServerRecord>("servers")) {
    if (server.kind !== "postgresql") continue;
    const { host, port, user, password } = server.admin;
    const client = new pg.Client({
      host,
      port,
      user: user ?? undefined,
      password: password ?? undefined,
      database: "postgres",
    });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>(
        `SELECT datname AS name FROM pg_database WHERE datname LIKE 'hello%'
         UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE 'hello%'`,
      );
      left.push(...rows.map((r) => `${server.id}: ${r.name}`));
    } finally {
      await client.end();
    }
  }
  return left;
}

/** Starts `argv` as its own labtest process and SIGKILLs it once it reports the point's step. */
async function killedAt(run: (...argv: string[]) => ResultPromise, point: KillPoint, argv: string[]) {
  const command = run("--verbose", ...argv);
  let output = "";
  const reached = new Promise<void>((resolve) => {
    command.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
      if (output.includes(point.step)) resolve();
    });
  });
  // A command that ends before the point was not killed where it should have been.
  const ended = command.then((r) => {
    throw new Error(`${argv.join(" ")} ended (exit ${r.exitCode}) before "${point.step}":\n${r.stderr}`);
  });
  await Promise.race([reached, ended]);
  await new Promise((resolve) => setTimeout(resolve, point.after ?? 0));
  command.kill("SIGKILL");
  await command.catch(() => undefined);
  ended.catch(() => undefined);
}

/** The image the experiment's recorded app runs, and the one its tag names. */
async function runningAndTagged(
  lab: ExperimentLab,
  tag: string,
): Promise<[string | undefined, string | undefined]> {
  const handle = (await lab.experiments.status("hello", "main"))?.handle ?? "";
  const running = handle ? (await docker.getContainer(handle).inspect()).Image : undefined;
  const tagged = await docker
    .getImage(tag)
    .inspect()
    .then((i) => i.Id)
    .catch(() => undefined);
  return [running, tagged];
}

/** A labtest command's end as the user sees it: no crash (exit 70, or a stack of an unhandled error). */
function expectNoCrash(result: { exitCode?: number; stderr: string }, what: string): void {
  expect(result.stderr, what).not.toMatch(/this is a bug|Unhandled|^\s+at /m);
  expect([0, 1], `${what}: exit ${result.exitCode}\n${result.stderr}`).toContain(result.exitCode);
}

test("on the docker runtime, a create or update killed at any step leaves nothing that update, delete and gc do not handle", async () => {
  const lab = await experimentLab();
  const repo = await dockerExampleRepo();
  // An image name of this test's own: docker_image_pattern's default (hello/main:latest) is the
  // engine's, and other tests' experiments of the example app move and remove that tag.
  const tag = `crash-${lab.registry.id.slice(0, 12).toLowerCase()}/hello/main:latest`;
  await setConfig(repo, (text) =>
    text.replace("  runtime: docker\n", `  runtime: docker\n  docker_image_pattern: ${tag}\n`),
  );
  await commit(repo, "an image name of its own");
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  // Commands that may crash or are killed run as processes of their own; delete and gc here.
  const labtest = (...argv: string[]) =>
    execa(process.execPath, [BIN, "--state", lab.statePath, ...argv], { cwd: repo, env, reject: false });
  const inProcess = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);

  for (const [round, createKill] of CREATE_KILLS.entries()) {
    const at = `create killed at "${createKill.step}"`;
    await killedAt(labtest, createKill, ["create", "main"]);
    // Update finishes the experiment (as a create of its branch again would).
    const update = await labtest("update", "main");
    expectNoCrash(update, `${at}, then update`);
    expect(update.exitCode, `${at}, then update: ${update.stderr}`).toBe(0);
    const updateKill = UPDATE_KILLS[round];
    if (updateKill) {
      const then = `${at}, update killed at "${updateKill.step}"`;
      await killedAt(labtest, updateKill, ["update", "main"]);
      if (!updateKill.switched) {
        const [running, tagged] = await runningAndTagged(lab, tag);
        expect(tagged, `${then}: the tag names the running release's image`).toBe(running);
      }
      const again = await labtest("update", "main");
      expect(again.exitCode, `${then}, then update: ${again.stderr}`).toBe(0);
      expect(
        (await lab.experiments.list()).map((e) => e.status),
        then,
      ).toEqual(["running"]);
      const [running, tagged] = await runningAndTagged(lab, tag);
      expect(tagged, `${then}, then update: the tag names the running release's image`).toBe(running);
    }
    const removal = await inProcess("delete", "main");
    expect(removal.code, `${at}, then delete: ${removal.stderr}`).toBe(0);
    const gc = await inProcess("gc", "--grace", "0");
    expect(gc.code, `${at}, then gc: ${gc.stderr}`).toBe(0);
    expect(await dockerLeftovers(lab.registry.id), at).toEqual([]);
    expect(await lab.experiments.list(), at).toEqual([]);
    expect(await lab.services.list(), at).toEqual([]);
    expect(await tenantsLeft(lab), at).toEqual([]);
    expect(await readdir(join(lab.home, "locks")).catch(() => []), at).toEqual([]);
    expect(await readdir(join(lab.home, "experiments", "hello")).catch(() => []), at).toEqual([]);
  }
}, 600_000);

test("on the docker runtime, a create killed while its services are being made leaves nothing after delete alone", async () => {
  const lab = await experimentLab();
  const repo = await dockerExampleRepo();
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const labtest = (...argv: string[]) =>
    execa(process.execPath, [BIN, "--state", lab.statePath, ...argv], { cwd: repo, env, reject: false });
  // Early and late in making the independent cache's container and volume (and the communal
  // database's tenant), with no update or gc to tidy up after the kill: delete must find it all.
  for (const after of [300, 1_500, 3_000]) {
    const at = `create killed ${after} ms into "bringing services up", then delete`;
    await killedAt(labtest, { step: "bringing services up", after }, ["create", "main"]);
    const removal = await labtest("delete", "main");
    expectNoCrash(removal, at);
    expect(removal.exitCode, `${at}: ${removal.stderr}`).toBe(0);
    expect(await dockerLeftovers(lab.registry.id), at).toEqual([]);
    expect(await lab.experiments.list(), at).toEqual([]);
    expect(await lab.services.list(), at).toEqual([]);
    expect(await tenantsLeft(lab), at).toEqual([]);
    // Its locks are dead and taken over by the next command at once; gc removes them.
    expect((await labtest("gc", "--grace", "0")).exitCode, at).toBe(0);
    expect(await readdir(join(lab.home, "locks")).catch(() => []), at).toEqual([]);
  }
}, 300_000);
