import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { expect, onTestFinished, test } from "vitest";
import { initialDataOf } from "../../src/config/initial-data.js";
import { loadConfig } from "../../src/config/resolve.js";
import { EmbeddedLaboratory, PROTOCOL_VERSION as v } from "../../src/laboratory/index.js";
import { testLaboratory } from "../support/laboratory.js";
import { gitRepo, writeFiles } from "../support/project.js";

/** A request as it crosses a wire: only what JSON carries arrives. */
const wire = <T>(request: T): T => JSON.parse(JSON.stringify(request)) as T;

test("services up carries the working copy's initial data as contents: the laboratory reads none of the client's files", async () => {
  const lab = await testLaboratory();
  const repo = await gitRepo("shop");
  await writeFiles(repo, {
    ".labtest.yml": `labtest:
  app_name: shop
  services:
    db:
      service: postgresql
      options:
        initial_data: dumps/
`,
  });
  await writeFiles(repo, {
    "dumps/seed.sql": "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('seed');",
  });
  const project = { config: await loadConfig({ cwd: repo }), subdirectory: "" };
  const request = wire({ v, project, experiment: "main", initialData: await initialDataOf(project.config) });
  // The working copy is gone by the time the laboratory takes the request.
  await rm(repo, { recursive: true, force: true });

  const env = { ...process.env, LABTEST_HOME: lab.home };
  const laboratory = new EmbeddedLaboratory({ env, cwd: lab.home, statePath: lab.statePath });
  onTestFinished(() => laboratory.close());
  const [status] = await laboratory.servicesUp(request);
  expect(status).toMatchObject({ name: "db", status: "ready" });

  const { DB_URL } = await lab.services.environment("shop", "main", {}, { hostReachable: true });
  const client = new pg.Client({ connectionString: DB_URL });
  await client.connect();
  try {
    expect((await client.query("SELECT body FROM notes")).rows).toEqual([{ body: "seed" }]);
  } finally {
    await client.end();
  }
});

test("a servicesUp request without the contents of a service's initial data is refused before anything is made", async () => {
  const lab = await testLaboratory();
  const repo = await gitRepo("shop");
  await writeFile(
    join(repo, ".labtest.yml"),
    "labtest:\n  app_name: shop\n  services:\n    db:\n      service: postgresql\n      options:\n        initial_data: seed.sql\n",
  );
  const project = { config: await loadConfig({ cwd: repo }), subdirectory: "" };
  const env = { ...process.env, LABTEST_HOME: lab.home };
  const laboratory = new EmbeddedLaboratory({ env, cwd: lab.home, statePath: lab.statePath });
  onTestFinished(() => laboratory.close());
  await expect(laboratory.servicesUp(wire({ v, project, experiment: "main" }))).rejects.toThrow(
    /the initial data of service db was not sent/,
  );
  expect(await lab.services.list()).toEqual([]);
});
