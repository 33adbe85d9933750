import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { parseGitCommand, pushHookScripts } from "../../src/server/git-access.js";
import { globMatches } from "../../src/server/push-hook.js";
import { scratchDir } from "../support/project.js";

describe("the git commands an SSH key may run", () => {
  it("takes git's fetch and push of an app's repository, however git spells its path", () => {
    for (const path of ["'hello.git'", "'/hello.git'", "/hello.git", "hello.git", "'hello'"])
      expect(parseGitCommand([`git-receive-pack ${path}`])).toEqual({
        program: "git-receive-pack",
        app: "hello",
      });
    expect(parseGitCommand(["git-upload-pack", "'/hello.git'"])).toEqual({
      program: "git-upload-pack",
      app: "hello",
    });
  });

  it("refuses anything else: other programs, paths outside the apps, shell syntax, a second argument", () => {
    for (const command of [
      "git-upload-archive 'hello.git'",
      "git-receive-pack '../hello.git'",
      "git-receive-pack '/home/lab/.ssh'",
      "git-receive-pack 'Hello.git'",
      "git-receive-pack 'hello.git'; rm -rf /",
      "git-receive-pack 'hello.git' 'other.git'",
      "git-receive-pack 'hello.git",
      "git-receive-pack",
      "",
    ])
      expect(parseGitCommand([command]), command).toBeUndefined();
  });
});

describe("the branch patterns of /push/branches", () => {
  it("matches * within a path segment, ** across them, everything else literally", () => {
    expect(globMatches("feature/*", "feature/a")).toBe(true);
    expect(globMatches("feature/*", "feature/a/b")).toBe(false);
    expect(globMatches("feature/**", "feature/a/b")).toBe(true);
    expect(globMatches("feature/*", "main")).toBe(false);
    expect(globMatches("release-1.0", "release-1x0")).toBe(false);
    expect(globMatches("main", "main")).toBe(true);
  });
});

describe("the hooks of an app's repository", () => {
  const ZERO = "0".repeat(40);
  const COMMIT = "a".repeat(40);

  /** Runs `hook` of pushHookScripts with a labtest that records what it was given; what it recorded, or nothing. */
  async function runHook(hook: string, input: string): Promise<{ code: number; labtestGot?: string }> {
    const scratch = await scratchDir();
    const recorded = join(scratch, "recorded");
    const labtest = join(scratch, "labtest.sh");
    await writeFile(labtest, `printf '%s|' "$@" > '${recorded}'; cat >> '${recorded}'\n`);
    const script = join(scratch, hook);
    await writeFile(script, pushHookScripts({ node: "/bin/sh", labtest })[hook] ?? "");
    const ran = await execa("/bin/sh", [script], { input, reject: false });
    const labtestGot = await readFile(recorded, "utf8").catch(() => undefined);
    return { code: ran.exitCode ?? -1, ...(labtestGot === undefined ? {} : { labtestGot }) };
  }

  it("start labtest for a push that publishes, with git's lines as they came", async () => {
    const input = `${ZERO} ${COMMIT} refs/labtest/feature/a\n${ZERO} ${COMMIT} refs/heads/feature/a\n`;
    for (const hook of ["pre-receive", "post-receive"])
      expect(await runHook(hook, input)).toEqual({ code: 0, labtestGot: `git-hook|${hook}|${input}` });
  });

  it("do not start labtest for a client's delivery of its code, which publishes nothing", async () => {
    const input = `${ZERO} ${COMMIT} refs/labtest/feature/a\n${COMMIT} ${COMMIT} refs/labtest/main\n`;
    for (const hook of ["pre-receive", "post-receive"])
      expect(await runHook(hook, input)).toEqual({ code: 0 });
  });
});
