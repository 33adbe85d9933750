import { existsSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it, onTestFinished } from "vitest";
import { checkBranch, checkout } from "../../src/experiments/checkout.js";
import { ExperimentError } from "../../src/experiments/errors.js";
import { gitRepo, scratchDir } from "../support/project.js";

/** A repository with one commit on main, and a file path nothing has written yet. */
async function setup(): Promise<{ repo: string; marker: string; scratch: string }> {
  const repo = await gitRepo("shop");
  await execa("git", [
    "-C",
    repo,
    "-c",
    "user.name=t",
    "-c",
    "user.email=t@t",
    "commit",
    "-q",
    "--allow-empty",
    "-m",
    "x",
  ]);
  const scratch = await scratchDir();
  return { repo, marker: join(scratch, "pwned"), scratch };
}

/** As if the laboratory's account had `protocol.ext.allow=always` in its git configuration. */
function allowExtInUserConfig(): void {
  const saved = { ...process.env };
  Object.assign(process.env, {
    GIT_CONFIG_COUNT: "1",
    GIT_CONFIG_KEY_0: "protocol.ext.allow",
    GIT_CONFIG_VALUE_0: "always",
  });
  onTestFinished(() => {
    for (const key of ["GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0"])
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
  });
}

describe("the repository URL reaches git as a repository, never as a command", () => {
  it("--upload-pack=… is not an option of git ls-remote or git clone", async () => {
    const { marker, scratch } = await setup();
    const url = `--upload-pack=touch ${marker}`;
    await expect(checkBranch(url, "main")).rejects.toThrow(ExperimentError);
    await expect(checkout(url, "main", join(scratch, "checkout"))).rejects.toThrow();
    expect(existsSync(marker)).toBe(false);
  });

  it("ext:: runs nothing even where the account's git configuration allows it", async () => {
    const { marker, scratch } = await setup();
    allowExtInUserConfig();
    const url = `ext::sh -c touch% ${marker}`;
    await expect(checkBranch(url, "main")).rejects.toThrow(/cannot read/);
    await expect(checkout(url, "main", join(scratch, "checkout"))).rejects.toThrow();
    expect(existsSync(marker)).toBe(false);
  });

  it("a local path and a file:// URL still check out", async () => {
    const { repo, scratch } = await setup();
    await checkBranch(repo, "main");
    await checkBranch(`file://${repo}`, "main");
    await expect(checkBranch(repo, "nope")).rejects.toThrow(/branch nope does not exist/);
    const { commit } = await checkout(`file://${repo}`, "main", join(scratch, "checkout"));
    expect(commit).toMatch(/^[0-9a-f]{40}$/);
  });
});
