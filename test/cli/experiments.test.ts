import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { commit, exampleRepo, experimentLab, viaRouter } from "../support/experiments.js";

it("labtest create prints the URL, a second create updates it (LabTest's commands are idempotent), and delete removes the experiment, twice without harm", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const cli = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);

  const created = await cli("create");
  expect(created, created.stderr).toMatchObject({
    code: 0,
    stdout: `hello/main is running at http://hello-main.localhost:${lab.routerPort}/\n`,
  });
  expect((await viaRouter(lab.routerPort, "hello-main.localhost")).body).toContain(
    "Hello from labtest from main",
  );
  expect((await cli("list")).stdout).toMatch(
    /^hello\/main {2}running {2}http:\/\/hello-main\.localhost:\d+\/ {2}branch main {2}release [0-9a-f]{12} {2}local {2}\d+s {2}services: cache \(redis independent, local\), db \(postgresql communal, local\)\n$/,
  );
  expect((await cli("lab", "status")).stdout).toMatch(/^router running on localhost port \d+ \(pid \d+\)\n$/);

  const database = await cli("logs", "main", "--service", "db");
  expect(database.stdout).toContain("database system is ready to accept connections");

  const release = (await lab.experiments.status("hello", "main"))?.release;
  await writeFile(join(repo, "NEWS"), "a newer commit\n");
  await commit(repo, "a newer commit");
  const again = await cli("create");
  expect(again, again.stderr).toMatchObject({
    code: 0,
    stdout: `hello/main is running at http://hello-main.localhost:${lab.routerPort}/\n`,
    stderr: "main exists already: updating it\n",
  });
  const updated = await lab.experiments.status("hello", "main");
  expect(updated?.release).not.toBe(release);
  expect(JSON.parse((await cli("--json", "create")).stdout)).toMatchObject({ name: "main", existed: true });
  // The name is another branch's: still an error.
  const taken = await cli("create", "other", "--name", "main");
  expect(taken.code).toBe(1);
  expect(taken.stderr).toContain("labtest: experiment main of hello exists already, of branch main");
  // A typo: nothing to delete, and the line names what there is.
  expect(await cli("delete", "mian")).toEqual({
    code: 0,
    stdout: "",
    stderr: "no experiment mian of hello: nothing to delete (hello's experiments here: main)\n",
  });

  expect(
    await cli("exec", "main", "--", "node", "-e", "process.exit(process.env.DATABASE_URL ? 0 : 9)"),
  ).toMatchObject({ code: 0 });
  expect(await cli("delete", "main")).toMatchObject({ code: 0, stdout: "deleted hello/main\n" });
  expect((await cli("status", "main")).code).toBe(1);
  expect((await cli("list")).stdout).toBe("no experiments of hello\n");
  expect(JSON.parse((await cli("--json", "delete", "main")).stdout)).toEqual({
    deleted: null,
    note: "no experiment main of hello: nothing to delete (hello has no experiments on this laboratory)",
  });
});
