// The environment an app receives is labtest's alone: a documented base plus the experiment's
// variables, whoever runs labtest and whatever their shell has set.
import { chmod } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, test } from "vitest";
import { commit, experimentLab, viaRouter } from "../support/experiments.js";
import { gitRepo, scratchDir, writeFiles } from "../support/project.js";

const LABTEST = join(import.meta.dirname, "../../bin/labtest.js");
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** An app answering with its whole environment and the account it runs as. */
const SERVER = `
const { createServer } = require("node:http");
const { userInfo } = require("node:os");
createServer((_, response) => {
  response.setHeader("content-type", "application/json");
  response.end(JSON.stringify({ env: process.env, account: userInfo() }));
}).listen(Number(process.env.PORT), "127.0.0.1");
`;

/**
 * A developer's shell: their own node and python3 first on PATH (which would not run the app),
 * their HOME, locale, time zone and a variable of their own.
 */
async function developerShell(lab: { home: string; routerPort: number }): Promise<Record<string, string>> {
  const home = await scratchDir("labtest-developer-");
  await writeFiles(home, {
    "bin/node": `#!/bin/sh\necho "the developer's node" >&2\nexit 3\n`,
    "bin/python3": `#!/bin/sh\necho "the developer's python3" >&2\nexit 3\n`,
  });
  // Readable by all, as homes often are: the app's account could run them.
  await chmod(home, 0o755);
  await Promise.all(["node", "python3"].map((program) => chmod(join(home, "bin", program), 0o755)));
  return {
    PATH: `${join(home, "bin")}:${process.env.PATH}`,
    HOME: home,
    LANG: "de_DE.UTF-8",
    TZ: "Pacific/Chatham",
    FOO: "the developer's",
    LABTEST_HOME: lab.home,
    LABTEST_ROUTER_PORT: String(lab.routerPort),
  };
}

test("the app, its before_start_command and labtest exec see the same clean base and the experiment's variables, nothing of the shell that ran labtest", async () => {
  const lab = await experimentLab();
  const repo = await gitRepo("clean");
  await writeFiles(repo, {
    "server.js": SERVER,
    ".labtest.yml": [
      "labtest:",
      "  app_name: clean",
      "  start_command: node server.js",
      "  before_start_command: node -e \"require('fs').writeFileSync('migrated', process.env.PATH)\"",
      "  environment:",
      "    - GREETING=hello",
      "  services:",
      "    db: { provider: local, service: postgresql }",
      "",
    ].join("\n"),
  });
  await commit(repo, "an app showing its environment");
  const shell = await developerShell(lab);
  const labtest = (...argv: string[]) =>
    execa(process.execPath, [LABTEST, "--state", lab.statePath, ...argv], {
      cwd: repo,
      env: shell,
      extendEnv: false,
      reject: false,
    });

  const created = await labtest("create");
  expect(created.exitCode, created.stderr).toBe(0);
  const answer = await viaRouter(lab.routerPort, "clean-main.localhost");
  const { env, account } = JSON.parse(answer.body) as {
    env: Record<string, string>;
    account: { username: string; homedir: string };
  };
  expect(account.username).toMatch(/^lt-[0-9a-f]{12}$/);
  expect(env).toMatchObject({
    PATH: SYSTEM_PATH,
    HOME: account.homedir,
    LANG: "C.UTF-8",
    USER: account.username,
    LOGNAME: account.username,
    APP_NAME: "clean",
    EXPERIMENT: "main",
    INSTANCE_NAME: "main",
    BRANCH_NAME: "main",
    GREETING: "hello",
    PGDATABASE: env.DB_NAME,
  });
  expect(account.homedir.startsWith(`${lab.home}/`)).toBe(true);
  expect(Object.keys(env).sort()).toEqual(
    [
      ...["PATH", "HOME", "LANG", "USER", "LOGNAME"],
      ...["APP_NAME", "EXPERIMENT", "INSTANCE_NAME", "BRANCH_NAME", "RELEASE", "VIRTUAL_HOST"],
      ...["EXPERIMENT_URL", "PORT", "GREETING"],
      ...["DB_URL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME"],
      ...["DATABASE_URL", "DATABASE_NAME", "DATABASE_USERNAME", "DATABASE_PASSWORD"],
      ...["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"],
    ].sort(),
  );

  // Another developer's shell, another variable of theirs: exec shows the app's environment still.
  shell.FOO = "another developer's";
  shell.HOME = await scratchDir("labtest-developer-");
  const printed = await labtest("exec", "main", "--", "env", "-0");
  expect(printed.exitCode, printed.stderr).toBe(0);
  const execEnv = Object.fromEntries(
    printed.stdout
      .split("\0")
      .filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
  expect(execEnv).toEqual(env);
  expect((await labtest("exec", "main", "--", "cat", "migrated")).stdout).toBe(SYSTEM_PATH);
  expect(
    (await labtest("exec", "main", "--", "python3", "-c", "import sys; print(sys.executable)")).stdout,
  ).toBe("/usr/bin/python3");
  // libpq's variables: psql reaches the experiment's database with no argument.
  const psql = await labtest("exec", "main", "--", "psql", "-Atc", "SELECT current_database(), current_user");
  expect(psql.stdout, psql.stderr).toBe(`${env.DB_NAME}|${env.DB_USER}`);
});
