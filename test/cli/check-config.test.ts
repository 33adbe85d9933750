import { existsSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { gitRepo, writeFiles } from "../support/project.js";

const root = join(import.meta.dirname, "../..");
const example = join(root, "examples/hello");

describe("labtest CLI", () => {
  it("prints help listing the commands, and its version", async () => {
    const help = await runCli(["--help"], root);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: labtest");
    expect(help.stdout).toContain("check-config");
    const version = await runCli(["--version"], root);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("check-config shows the bundled example resolved, with where each value came from", async () => {
    const { code, stdout, stderr } = await runCli(["check-config"], example);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toContain(`configuration is valid: ${join(example, ".labtest.yml")}`);
    expect(stdout).toMatch(/^app_name: hello +# \.labtest\.yml:3$/m);
    expect(stdout).toMatch(/^test_domain: localhost +# default: built-in$/m);
    expect(stdout).toMatch(/^host: local +# default: the embedded laboratory on this machine$/m);
    expect(stdout).toMatch(
      /^services: +# \.labtest\.yml:\d+\n {2}db:\n {4}provider: local\n {4}service: postgresql/m,
    );
  });

  it("check-config --json gives the configuration and sources as JSON", async () => {
    const { code, stdout } = await runCli(["--json", "check-config"], example);
    expect(code).toBe(0);
    const output = JSON.parse(stdout);
    expect(output.valid).toBe(true);
    expect(output.config.app_name).toBe("hello");
    expect(output.config.services.cache).toMatchObject({ service: "redis", provision_type: "independent" });
    expect(output.sources.test_domain).toEqual({ from: "default", detail: "built-in" });
    expect(output.sources.app_name).toMatchObject({ from: "file", key: "labtest.app_name", line: 3 });
  });

  it("a broken configuration exits 2 with one readable line per problem and no stack trace", async () => {
    const repo = await gitRepo("broken");
    await writeFiles(repo, {
      ".labtest.yml":
        "labtest:\n  app_nmae: x\n  verbose: [1]\n  services:\n    db: { service: postgresql, provision_type: shared }\n",
    });
    const { code, stdout, stderr } = await runCli(["check-config"], repo);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      `labtest: configuration ${join(repo, ".labtest.yml")} is invalid (3 problems):\n` +
        '  - line 2, labtest.app_nmae: unknown option "app_nmae" (did you mean "app_name"?)\n' +
        "      fix: rename it to app_name\n" +
        "  - line 3, labtest.verbose: expected a boolean, got a list\n" +
        "      fix: write a boolean\n" +
        "  - line 5, labtest.services.db.shared_experiment_name: a shared service needs the experiment whose instance it uses\n" +
        "      fix: add shared_experiment_name: <experiment>\n",
    );
    const json = await runCli(["check-config", "--json"], repo);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout).error.problems).toHaveLength(3);
  });

  it("rejects unknown commands and options with exit code 2", async () => {
    expect((await runCli(["frobnicate"], root)).code).toBe(2);
    expect((await runCli(["check-config", "--frob"], root)).code).toBe(2);
  });

  it("runs as the installed labtest executable", async () => {
    expect(existsSync(join(root, "dist/cli/main.js")), "run `npm run build` first").toBe(true);
    const ok = await execa("node", [join(root, "bin/labtest.js"), "check-config"], { cwd: example });
    expect(ok.stdout).toContain("configuration is valid");
    const repo = await gitRepo("broken");
    await writeFiles(repo, { ".labtest.yml": "labtest:\n  verbose: maybe\n" });
    const bad = await execa("node", [join(root, "bin/labtest.js"), "check-config"], {
      cwd: repo,
      reject: false,
    });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('line 2, labtest.verbose: expected a boolean, got "maybe"');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });
});
