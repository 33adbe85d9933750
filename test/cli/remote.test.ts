import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, onTestFinished, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { laboratoryCredential } from "../../src/laboratory/credentials.js";
import { EmbeddedLaboratory, HttpsLaboratory, type LaboratoryEvent } from "../../src/laboratory/index.js";
import { PROTOCOL_VERSION as v } from "../../src/laboratory/protocol.js";
import { runCli } from "../support/cli.js";
import { commit, exampleRepo, experimentLab, viaRouter } from "../support/experiments.js";
import { laptopEnv, login, servedLaboratory } from "../support/remote.js";

/** The laboratory's home served over real TLS in this process; a laptop logged in with a deploy token. */
async function remoteLaboratory() {
  const lab = await experimentLab();
  const labEnv = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const laboratory = new EmbeddedLaboratory({ env: labEnv, cwd: lab.home, statePath: lab.statePath });
  const { server, tokens, fingerprint } = await servedLaboratory(lab.home, laboratory);
  const laptop = { ...(await laptopEnv()), LABTEST_HOST: server.url };
  const token = tokens.create({ name: "dev", scope: "deploy" }).token;
  const loggedIn = await login(server, laptop, token, "--fingerprint", fingerprint);
  expect(loggedIn.code, loggedIn.stderr).toBe(0);
  return { lab, labEnv, laptop, url: server.url };
}

test("a whole lifecycle from a laptop through the HTTPS laboratory prints what the embedded one prints", async () => {
  const { lab, labEnv, laptop } = await remoteLaboratory();
  const repo = await exampleRepo();
  const cli = (...argv: string[]) => runCli(argv, repo, laptop);

  const created = await cli("--verbose", "create", "main");
  expect(created.code, created.stderr).toBe(0);
  expect(created.stdout).toMatch(/^hello\/main is running at http:\/\/hello-main\.localhost/);
  expect(created.stderr).toMatch(/^… /m);
  expect((await viaRouter(lab.routerPort, "hello-main.localhost")).status).toBe(200);

  const ran = await cli(
    "exec",
    "main",
    "--",
    "node",
    "-e",
    "console.log(process.env.EXPERIMENT); process.exit(3)",
  );
  expect(ran).toMatchObject({ code: 3, stdout: "main\n" });

  const remote = await cli("list", "--json");
  const embedded = await runCli(["--state", lab.statePath, "list", "--json"], repo, {
    ...labEnv,
    LABTEST_HOST: "local",
  });
  expect(remote.code).toBe(0);
  expect(JSON.parse(remote.stdout)).toEqual(JSON.parse(embedded.stdout));
  expect((JSON.parse(remote.stdout) as { experiments: unknown[] }).experiments).toHaveLength(1);

  await writeFile(join(repo, "NOTE.md"), "a change\n");
  await commit(repo, "a new commit");
  const updated = await cli("--verbose", "update", "main");
  expect(updated.code, updated.stderr).toBe(0);
  expect(updated.stdout).toMatch(/^hello\/main runs release [0-9a-f]{12} at http:\/\/hello-main\.localhost/);
  expect(updated.stderr).toMatch(/^… /m);
  const services = await cli("services", "list", "--json");
  expect(services.code, services.stderr).toBe(0);
  expect(
    (JSON.parse(services.stdout) as { services: { name: string }[] }).services.map((s) => s.name).sort(),
  ).toEqual(["cache", "db"]);

  const missing = await cli("status", "nothing");
  expect(missing).toMatchObject({ code: 1, stdout: "no experiment nothing\n" });
  const wrongName = await cli("delete", "Not_A_Name");
  const wrongLocally = await runCli(["delete", "Not_A_Name"], repo, { ...labEnv, LABTEST_HOST: "local" });
  expect(wrongName).toEqual(wrongLocally);

  // LabTest's idempotent commands, over HTTPS as on this machine.
  const again = await cli("create", "main");
  expect(again, again.stderr).toMatchObject({ code: 0, stderr: "main exists already: updating it\n" });
  const deleted = await cli("delete", "main");
  expect(deleted).toMatchObject({ code: 0, stdout: "deleted hello/main\n" });
  expect(await cli("list")).toMatchObject({ code: 0, stdout: "no experiments of hello\n" });
  expect(await cli("delete", "main")).toMatchObject({
    code: 0,
    stderr: "no experiment main of hello: nothing to delete (hello has no experiments on this laboratory)\n",
  });
});

test("logs --follow streams the app's output as it comes and ends when the client lets go", async () => {
  const { laptop, url } = await remoteLaboratory();
  const repo = await exampleRepo();
  expect((await runCli(["create", "main"], repo, laptop)).code).toBe(0);
  const project = { config: await loadConfig({ cwd: repo, env: laptop }), subdirectory: "" };
  const remote = new HttpsLaboratory(await laboratoryCredential(url, laptop));
  onTestFinished(() => remote.close());

  const stop = new AbortController();
  const seen: LaboratoryEvent[] = [];
  const followed = remote.logs(
    { v, project, name: "main", follow: true },
    (event) => {
      seen.push(event);
      stop.abort();
    },
    stop.signal,
  );
  await expect(followed).resolves.toBeUndefined();
  expect(seen[0]?.text).toContain("migrated");
  // The laboratory still answers on the same client after the stream was let go.
  expect((await remote.list({ v, app: "hello" })).map((e) => e.name)).toEqual(["main"]);
});
