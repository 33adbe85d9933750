import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import pRetry from "p-retry";
import { expect, onTestFinished, test } from "vitest";
import { experimentLock } from "../../src/experiments/context.js";
import { Locks } from "../../src/lab/locks.js";
import { EmbeddedLaboratory } from "../../src/laboratory/index.js";
import { runCli } from "../support/cli.js";
import {
  commit,
  type ExperimentLab,
  exampleRepo,
  experimentLab,
  setConfig,
  viaRouter,
} from "../support/experiments.js";
import { laptopEnv, login, servedLaboratory } from "../support/remote.js";

const BIN = join(import.meta.dirname, "../../bin/labtest.js");

/** A laboratory served over real TLS, and a laptop per name, each logged in with a deploy token of that name. */
async function laboratoryWithLaptops(...names: string[]) {
  const lab = await experimentLab();
  const labEnv = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const laboratory = new EmbeddedLaboratory({ env: labEnv, cwd: lab.home, statePath: lab.statePath });
  const { server, tokens, fingerprint } = await servedLaboratory(lab.home, laboratory);
  const laptops: NodeJS.ProcessEnv[] = [];
  for (const name of names) {
    const laptop = { ...(await laptopEnv()), LABTEST_HOST: server.url };
    const { token } = tokens.create({ name, scope: "deploy" });
    const loggedIn = await login(server, laptop, token, "--fingerprint", fingerprint);
    expect(loggedIn.code, loggedIn.stderr).toBe(0);
    laptops.push(laptop);
  }
  return { lab, laptops };
}

/** The example app, its server saying on its output each request's x-probe header. */
async function probedExampleRepo(): Promise<string> {
  const repo = await exampleRepo();
  const server = join(repo, "server.js");
  await writeFile(
    server,
    (await readFile(server, "utf8")).replace(
      "createServer(async (_request, response) => {",
      'createServer(async (request, response) => {\n  console.log("served", request.headers["x-probe"]);',
    ),
  );
  await commit(repo, "the server says what it serves");
  return repo;
}

/** Resolves once a command holds experiment `name` of the example app. */
function changing(lab: ExperimentLab, name: string): Promise<void> {
  return pRetry(
    async () => {
      if (!(await new Locks(join(lab.home, "locks")).held(experimentLock("hello", name))))
        throw new Error("not held");
    },
    { retries: 600, minTimeout: 50, maxTimeout: 50 },
  );
}

test("two laptops through one HTTPS laboratory: creates at once both succeed, updates of one experiment take turns naming the token that holds it, a delete streams whom it cancels", async () => {
  const { lab, laptops } = await laboratoryWithLaptops("alice", "bob");
  const [alice, bob] = laptops as [NodeJS.ProcessEnv, NodeJS.ProcessEnv];
  const repo = await exampleRepo();
  const as = (laptop: NodeJS.ProcessEnv, ...argv: string[]) => runCli(["--verbose", ...argv], repo, laptop);

  const created = await Promise.all([
    as(alice, "create", "main", "--name", "a"),
    as(bob, "create", "main", "--name", "b"),
  ]);
  expect(
    created.map((c) => [c.code, c.stderr.includes("waiting:")]),
    created.map((c) => c.stderr).join("\n"),
  ).toEqual([
    [0, false],
    [0, false],
  ]);
  expect((await as(bob, "delete", "b")).code).toBe(0);

  // A slow release: updates overlap.
  await setConfig(repo, (text) =>
    text.replace(
      "before_start_command: node migrate.js",
      `before_start_command: sh -c "sleep 3 && node migrate.js"`,
    ),
  );
  await commit(repo, "a slow migration");
  const first = as(alice, "update", "a");
  await changing(lab, "a");
  const [firstDone, secondDone] = await Promise.all([first, as(bob, "update", "a")]);
  expect([firstDone.code, secondDone.code], `${firstDone.stderr}\n${secondDone.stderr}`).toEqual([0, 0]);
  // The token's name, not the laboratory's system user that runs both.
  expect(secondDone.stderr).toMatch(
    /^… waiting: experiment a of hello is being changed by alice running labtest update a \(pid \d+\) since /m,
  );
  expect(secondDone.stderr).not.toContain(`changed by ${userInfo().username}`);
  expect(firstDone.stderr).not.toContain("waiting:");

  const updating = as(alice, "update", "a");
  await changing(lab, "a");
  const deleted = await as(bob, "delete", "a");
  expect(deleted.code, deleted.stderr).toBe(0);
  expect(deleted.stderr).toMatch(/^… cancelling what alice running labtest update a \(pid \d+\)/m);
  expect(deleted.stdout).toBe("deleted hello/a\n");
  const cancelled = await updating;
  expect(cancelled.code).toBe(1);
  expect(cancelled.stderr).toContain("labtest update a was cancelled by labtest delete a from bob");
}, 300_000);

test("labtest logs --follow from a laptop shows what the app prints after the command started", async () => {
  const { lab, laptops } = await laboratoryWithLaptops("alice");
  const [alice] = laptops as [NodeJS.ProcessEnv];
  const repo = await probedExampleRepo();
  const created = await runCli(["create", "main"], repo, alice);
  expect(created.code, created.stderr).toBe(0);

  const follow = execa(process.execPath, [BIN, "logs", "main", "--follow"], {
    cwd: repo,
    env: alice,
    reject: false,
  });
  onTestFinished(() => void follow.kill("SIGKILL"));
  let output = "";
  follow.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const seen = (text: string) =>
    pRetry(
      () => {
        if (!output.includes(text))
          throw new Error(`labtest logs --follow has not shown ${text}:\n${output}`);
      },
      { retries: 300, minTimeout: 100, maxTimeout: 100 },
    );
  // The app's output so far (its migration's) arrives first: the follow has begun.
  await seen("migrated");
  const probe = `after-follow-${randomBytes(4).toString("hex")}`;
  expect((await viaRouter(lab.routerPort, "hello-main.localhost", { "x-probe": probe })).status).toBe(200);
  await seen(`served ${probe}`);
  follow.kill("SIGINT");
  expect((await follow).exitCode).toBe(0);
}, 180_000);
