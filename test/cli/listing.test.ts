import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { testLaboratory } from "../support/laboratory.js";
import { gitRepo, scratchDir } from "../support/project.js";

const config = (app: string) =>
  `labtest:\n  app_name: ${app}\n  services:\n    cache: { provider: local, service: redis, provision_type: independent }\n`;

describe("listing, as list does: this app's, or --all", () => {
  it("services list shows this app's services; --all every app's, also outside an app", async () => {
    const lab = await testLaboratory();
    const env = { ...process.env, LABTEST_HOME: lab.home };
    const shop = await gitRepo("shop");
    await writeFile(join(shop, ".labtest.yml"), config("shop"));
    const blog = await gitRepo("blog");
    await writeFile(join(blog, ".labtest.yml"), config("blog"));
    const cli = (cwd: string, ...argv: string[]) => runCli(["--state", lab.statePath, ...argv], cwd, env);

    expect((await cli(shop, "services", "list")).stdout).toBe("no services of shop\n");
    expect(await cli(shop, "services", "up", "-e", "main")).toMatchObject({ code: 0 });
    expect(await cli(blog, "services", "up", "-e", "main")).toMatchObject({ code: 0 });

    const mine = await cli(shop, "services", "list");
    expect(mine.stdout).toMatch(/^shop\/main\/cache: redis on local, independent, ready/);
    expect(mine.stdout.trim().split("\n")).toHaveLength(1);
    const nowhere = await scratchDir();
    const all = await cli(nowhere, "services", "list", "--all");
    expect(all.stderr).toBe("");
    expect(all.stdout.trim().split("\n")).toHaveLength(2);
    expect(all.stdout).toMatch(/^blog\/main\/cache: .*\nshop\/main\/cache: /);

    // Without --all, outside an app, it says what is missing and how to list every app's.
    const lost = await cli(nowhere, "services", "list");
    expect(lost.code).toBe(2);
    expect(lost.stderr).toContain("pass --all");

    expect(await cli(shop, "services", "down", "-e", "main")).toMatchObject({ code: 0 });
    expect(await cli(blog, "services", "down", "-e", "main")).toMatchObject({ code: 0 });
    expect((await cli(nowhere, "services", "list", "--all")).stdout).toBe("no services on this laboratory\n");
  });

  it("list --all needs no configuration; an empty list says so the same way as services list", async () => {
    const lab = await testLaboratory();
    const env = { ...process.env, LABTEST_HOME: lab.home };
    const shop = await gitRepo("shop");
    await writeFile(join(shop, ".labtest.yml"), config("shop"));
    const nowhere = await scratchDir();
    expect(await runCli(["--state", lab.statePath, "list", "--all"], nowhere, env)).toEqual({
      code: 0,
      stdout: "no experiments on this laboratory\n",
      stderr: "",
    });
    expect((await runCli(["--state", lab.statePath, "list"], shop, env)).stdout).toBe(
      "no experiments of shop\n",
    );
  });

  it("services up with --config outside a git repository needs no repository", async () => {
    const lab = await testLaboratory();
    const env = { ...process.env, LABTEST_HOME: lab.home };
    const directory = await scratchDir();
    await writeFile(join(directory, "services.yml"), config("shop"));
    const cli = (...argv: string[]) =>
      runCli(["--state", lab.statePath, "--config", "services.yml", ...argv], directory, env);
    const up = await cli("services", "up", "-e", "main");
    expect(up.stderr).toBe("");
    expect(up.stdout).toMatch(/^shop\/main\/cache: redis on local, independent, ready/);
    expect(await cli("services", "down", "-e", "main")).toMatchObject({ code: 0 });
  });
});
