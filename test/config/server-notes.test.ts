import { describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { gitRepo, writeFiles } from "../support/project.js";

/** The lines of LabTest's docs/reference/backing_services/docker.rst MySQL example these notes are about. */
const DOCKER_RST_MYSQL = `labtest:
  app_name: shop
  services:
    mydb:
      provider: docker
      service: mysql
      options:
        initial_data_source: "/backups/bostongov/"
        image: "mysql:5.6"
`;

describe("check-config's notes on what the laboratory will refuse or must allow", () => {
  it("an image of MySQL older than 5.7.8, and initial data at an absolute path, each get a note", async () => {
    const repo = await gitRepo("shop");
    await writeFiles(repo, { ".labtest.yml": DOCKER_RST_MYSQL });
    const { code, stdout, stderr } = await runCli(["check-config"], repo);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^note: line 9, labtest\.services\.mydb\.options\.image: mysql:5\.6 is MySQL 5\.6, older than 5\.7\.8, .*the laboratory refuses it/m,
    );
    expect(stdout).toMatch(
      /^note: line 8, labtest\.services\.mydb\.options\.initial_data_source: \/backups\/bostongov\/ is read on the laboratory .*\/services\/initial_data\/directories\/shop/m,
    );
  });

  it("a MySQL 5.7 or MariaDB image, and a relative path, get none", async () => {
    const repo = await gitRepo("shop");
    const text = DOCKER_RST_MYSQL.replace("/backups/bostongov/", "dumps/").replace("mysql:5.6", "mysql:5.7");
    await writeFiles(repo, { ".labtest.yml": text });
    const { stdout } = await runCli(["check-config"], repo);
    expect(stdout).not.toMatch(/older than|read on the laboratory/);
  });
});
