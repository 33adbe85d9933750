import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { gitRepo, scratchDir } from "../support/project.js";

const remoteUrl = async (repo: string, name: string) =>
  (await execa("git", ["-C", repo, "remote", "get-url", name], { reject: false })).stdout;

it("remote add names the app's repository on the SSH laboratory, prints it with --print, and refuses what it cannot add", async () => {
  const repo = await gitRepo("shop");
  await writeFile(join(repo, ".labtest.yml"), "labtest:\n  host: deploy@lab.example.com:2222\n");
  const env = { ...process.env, LABTEST_HOME: await scratchDir() };
  const cli = (...argv: string[]) => runCli(argv, repo, env);

  expect(await cli("remote", "add", "--print")).toEqual({
    code: 0,
    stdout: "git remote add labtest ssh://deploy@lab.example.com:2222/shop.git\n",
    stderr: "",
  });
  expect(await remoteUrl(repo, "labtest")).toBe("");

  expect(await cli("remote", "add")).toMatchObject({
    code: 0,
    stdout:
      "added git remote labtest: ssh://deploy@lab.example.com:2222/shop.git\npublish a branch with: git push labtest BRANCH\n",
  });
  expect(await remoteUrl(repo, "labtest")).toBe("ssh://deploy@lab.example.com:2222/shop.git");

  // Taken: git's reason, and how to point it here instead; the remote stays as it was.
  const again = await cli("--lab", "ssh://other.example.com", "remote", "add");
  expect(again.code).toBe(2);
  expect(again.stderr).toContain("git cannot add remote labtest");
  expect(again.stderr).toContain("git remote set-url labtest ssh://other.example.com/shop.git");
  expect(await remoteUrl(repo, "labtest")).toBe("ssh://deploy@lab.example.com:2222/shop.git");

  // git push publishes over SSH only.
  const https = await cli("--lab", "https://lab.example.com", "remote", "add", "lab2");
  expect(https.code).toBe(2);
  expect(https.stderr).toContain("git push publishes to a laboratory reached over SSH");
  expect(https.stderr).toContain("an HTTPS laboratory (https://lab.example.com");
  expect(await remoteUrl(repo, "lab2")).toBe("");
});
