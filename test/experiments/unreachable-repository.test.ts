import { mkdir, rm } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import getPort from "get-port";
import { describe, expect, test, vi } from "vitest";
import { runCli } from "../support/cli.js";
import { commit } from "../support/example-app.js";
import { gitRepo, scratchDir, writeFiles } from "../support/project.js";

/** A project whose code_repo_url is `url`, with a laboratory home of its own. */
async function project(url: string) {
  const repo = await gitRepo("unreachable");
  await writeFiles(repo, {
    ".labtest.yml": `labtest:\n  code_repo_url: ${url}\n  start_command: node -e "require('http').createServer((q, s) => s.end('x')).listen(process.env.PORT)"\n`,
  });
  await commit(repo, "a project whose repository cannot be read");
  const env = { ...process.env, LABTEST_HOME: await scratchDir() };
  return (...argv: string[]) => runCli(argv, repo, env);
}

/** A user error naming the repository (exit 2, as for a wrong setting), not a reported bug. */
function unreadable(result: { code: number; stderr: string }, url: string, why: RegExp) {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stderr).not.toContain("this is a bug");
  expect(result.stderr).toContain(`labtest: cannot read ${url}\n  - code_repo_url: `);
  expect(result.stderr).toMatch(why);
  expect(result.stderr).toContain("      fix: check code_repo_url and your access to it\n");
}

describe("a code_repo_url git cannot read", () => {
  test("nothing listens there: create fails at once, naming it, and leaves nothing", async () => {
    const url = `http://127.0.0.1:${await getPort()}/x.git`;
    const cli = await project(url);
    unreadable(await cli("create"), url, /Failed to connect to 127\.0\.0\.1/);
    expect((await cli("list")).stdout).toBe("no experiments of unreachable\n");
  });

  test("a repository whose branch is listed but cannot be cloned (its objects lost): create says so and leaves nothing", async () => {
    const broken = await gitRepo("broken");
    await writeFiles(broken, { README: "hello\n" });
    await commit(broken, "a commit whose objects go missing");
    await rm(join(broken, ".git", "objects"), { recursive: true });
    await mkdir(join(broken, ".git", "objects"));
    const url = `file://${broken}`;
    const cli = await project(url);
    unreadable(await cli("create"), url, /fatal: /);
    expect((await cli("list")).stdout).toBe("no experiments of unreachable\n");
  });

  test("a server that accepts and never answers: create gives up at the deadline, naming it, and leaves nothing", async () => {
    const held: Socket[] = [];
    const server = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as { port: number };
      const url = `http://127.0.0.1:${port}/x.git`;
      vi.stubEnv("LABTEST_GIT_TIMEOUT", "2");
      const cli = await project(url);
      const started = Date.now();
      const created = await cli("create");
      expect(Date.now() - started).toBeLessThan(15_000);
      unreadable(created, url, /no answer within 2 s \(LABTEST_GIT_TIMEOUT sets how long git waits\)/);
      expect(held.length).toBeGreaterThan(0);
      expect((await cli("list")).stdout).toBe("no experiments of unreachable\n");
    } finally {
      vi.unstubAllEnvs();
      for (const socket of held) socket.destroy();
      server.close();
    }
  });
});
