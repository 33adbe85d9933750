import { mkdir, readFile, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import mysql from "mysql2/promise";
import { expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ProvisionError } from "../../src/services/errors.js";
import { commit, type ExperimentLab, experimentLab, nodeAppRepo } from "../support/experiments.js";
import { scratchDir } from "../support/project.js";

const SERVER = `require("http").createServer((_, res) => res.end("ok")).listen(process.env.PORT, "127.0.0.1");`;

/** A dump that creates table `loaded` holding `label`, written with `mtime` (seconds). */
async function dump(file: string, label: string, mtime: number): Promise<void> {
  await writeFile(file, `CREATE TABLE loaded (label varchar(40)); INSERT INTO loaded VALUES ('${label}');`);
  await utimes(file, mtime, mtime);
}

/** Sets `key` in the laboratory's state file (the file store reads it on every lookup). */
async function setState(lab: ExperimentLab, key: string, value: unknown): Promise<void> {
  const file = join(lab.home, "state-values.json");
  const values = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
  await writeFile(file, JSON.stringify({ ...values, [key]: value }));
}

/** A branch `branch` of `repo` whose committed configuration loads `source` as LabTest's docker.rst does. */
async function branchLoading(repo: string, branch: string, source: string): Promise<void> {
  await execa("git", ["-C", repo, "checkout", "-q", "-b", branch, "main"]);
  await writeFile(
    join(repo, ".labtest.yml"),
    `labtest:
  app_name: hello
  start_command: node server.js
  services:
    db:
      provider: local
      service: mysql
      options:
        initial_data_source: "${source}"
`,
  );
  await commit(repo, `initial data from ${source}`);
}

test("a branch loads initial data from a laboratory directory only when the administrator allows it (realpath-checked), the newest dump", async () => {
  const lab = await experimentLab();
  const backups = await scratchDir("labtest-backups-");
  const nightly = join(backups, "bostongov");
  await mkdir(nightly);
  await dump(join(nightly, "monday.sql"), "monday", 1_700_000_000);
  await dump(join(nightly, "tuesday.sql"), "tuesday", 1_700_086_400);
  const outside = await scratchDir("labtest-outside-");
  const repo = await nodeAppRepo(SERVER);
  const project = { config: await loadConfig({ cwd: repo }), subdirectory: "" };
  await branchLoading(repo, "nightly", `${nightly}/`);

  // Not allowed: refused naming the path, the state key and the fix; nothing is made.
  const refused = lab.experiments.create(project, { branch: "nightly" });
  await expect(refused).rejects.toBeInstanceOf(ProvisionError);
  await expect(refused).rejects.toThrow(nightly);
  await expect(refused).rejects.toThrow("/services/initial_data/directories/hello");
  expect(lab.experiments.registry.list()).toEqual([]);
  expect(await lab.services.list()).toEqual([]);

  await setState(lab, "/services/initial_data/directories/default", [backups]);
  const created = await lab.experiments.create(project, { branch: "nightly" });
  expect(created.status).toBe("running");
  const { DATABASE_URL } = await lab.services.environment("hello", "nightly", {}, { hostReachable: true });
  const connection = await mysql.createConnection(DATABASE_URL as string);
  try {
    const [rows] = await connection.query("SELECT label FROM loaded");
    expect(rows).toEqual([{ label: "tuesday" }]);
  } finally {
    await connection.end();
  }

  // A link in the allowed directory, and a path climbing out of it, lead nowhere else.
  await dump(join(outside, "secret.sql"), "secret", 1_700_172_800);
  await symlink(join(outside, "secret.sql"), join(nightly, "wednesday.sql"));
  await branchLoading(repo, "linked", `${nightly}/`);
  const linked = lab.experiments.create(project, { branch: "linked" });
  await expect(linked).rejects.toBeInstanceOf(ProvisionError);
  await expect(linked).rejects.toThrow(/wednesday.sql .*not in a directory the laboratory allows/);
  await branchLoading(repo, "climbing", `${backups}/../${outside.split("/").pop()}/secret.sql`);
  await expect(lab.experiments.create(project, { branch: "climbing" })).rejects.toThrow(
    /not in a directory the laboratory allows/,
  );
  expect(lab.experiments.registry.list().map((row) => row.name)).toEqual(["nightly"]);
});
