import { describe, expect, it } from "vitest";
import { parseGitCommand } from "../../src/server/git-access.js";
import { globMatches } from "../../src/server/push-hook.js";

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
