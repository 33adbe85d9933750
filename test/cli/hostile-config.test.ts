import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { gitRepo, writeFiles } from "../support/project.js";

/** check-config of a repository whose .labtest.yml is `content`. */
async function checkConfig(content: string | Buffer, ...argv: string[]) {
  const repo = await gitRepo("app");
  await writeFiles(repo, {});
  await import("node:fs/promises").then((fs) => fs.writeFile(`${repo}/.labtest.yml`, content));
  return runCli([...argv, "check-config"], repo);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

describe("configuration a user got wrong, never reported as a bug", () => {
  it("a YAML alias bomb is a configuration error, not exit 70", async () => {
    const levels = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) {
      const previous = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${previous}`).join(", ")}]`);
    }
    const bomb = `${levels.join("\n")}\nlabtest:\n  app_name: *i\n`;
    const { code, stdout, stderr } = await checkConfig(bomb);
    expect(stdout).toBe("");
    expect(code).toBe(2);
    expect(stderr).toMatch(/^labtest: configuration .*\.labtest\.yml is not valid YAML \(1 problem\):\n/);
    expect(stderr).toContain("too many aliases");
    expect(stderr).not.toContain("bug");
  });

  it("random bytes give a bounded, printable list of problems", async () => {
    const noise = Buffer.concat([Buffer.from("labtest:\n"), randomBytes(2_000_000)]);
    const { code, stdout, stderr } = await checkConfig(noise);
    expect(stdout).toBe("");
    expect(code).toBe(2);
    expect(stderr).not.toContain("bug");
    expect(stderr.length).toBeLessThan(10_000);
    expect(stderr).not.toMatch(CONTROL);
    expect(stderr).toMatch(/is not valid YAML \(\d+ problems, the first 20 shown\):\n/);
    expect(stderr.match(/\n {2}- /g)).toHaveLength(20);

    const json = await checkConfig(noise, "--json");
    expect(json.code).toBe(2);
    expect(json.stdout.length).toBeLessThan(20_000);
    expect(JSON.parse(json.stdout).error.problems.length).toBe(20);
  });

  it("a control character in a key or value is shown escaped", async () => {
    const { code, stderr } = await checkConfig('labtest:\n  "ap\\u001b[31mp": x\n  verbose: "\\u0007no"\n');
    expect(code).toBe(2);
    expect(stderr).not.toMatch(CONTROL);
    expect(stderr).toContain('unknown option "ap\\u001b[31mp"');
    expect(stderr).toContain('got "\\u0007no"');
  });

  it("check-config finds shell operators in commands, with their line", async () => {
    const { code, stderr } = await checkConfig(
      "labtest:\n  app_name: shop\n  start_command: node server.js\n  before_start_command: npm run migrate && npm run seed\n",
    );
    expect(code).toBe(2);
    expect(stderr).toContain(
      "  - line 4, labtest.before_start_command: uses the shell operator &&, and no shell runs it\n" +
        "      fix: run a shell on purpose: sh -c '…' (or put the steps in a script)\n",
    );
  });

  it("check-config keeps a space between a long value and where it came from", async () => {
    const { code, stdout } = await checkConfig(
      `labtest:\n  app_name: shop\n  start_command: node ${"--a-rather-long-option=value ".repeat(3)}--loglevel=error\n`,
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/--loglevel=error {2}# \.labtest\.yml:3$/m);
  });
});
