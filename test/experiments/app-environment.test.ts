// The environment an app receives is labtest's alone: a documented base plus the experiment's
// variables, whoever runs labtest and whatever their shell has set.
import { chmod } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, test } from "vitest";
import { EmbeddedLaboratory } from "../../src/laboratory/index.js";
import { runCli } from "../support/cli.js";
import { commit, experimentLab, viaRouter } from "../support/experiments.js";
import { gitRepo, scratchDir, writeFiles } from "../support/project.js";
import { laptopEnv, login, servedLaboratory } from "../support/remote.js";

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

/** What `env -0` printed, as variables. */
function variables(printed: string): Record<string, string> {
  return Object.fromEntries(
    printed
      .split("\0")
      .filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

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

/** The repository of app clean, answering with its environment, configured with `settings` besides. */
async function cleanApp(...settings: string[]): Promise<string> {
  const repo = await gitRepo("clean");
  await writeFiles(repo, {
    "server.js": SERVER,
    ".labtest.yml": [
      "labtest:",
      "  app_name: clean",
      "  start_command: node server.js",
      ...settings.map((line) => `  ${line}`),
      "  environment:",
      "    - GREETING=hello",
      "",
    ].join("\n"),
  });
  await commit(repo, "an app showing its environment");
  return repo;
}

/** labtest run on the laboratory from `shell` in `repo`, as a separate process. */
function labtestFrom(shell: Record<string, string>, lab: { statePath: string }, repo: string) {
  return (...argv: string[]) =>
    execa(process.execPath, [LABTEST, "--state", lab.statePath, ...argv], {
      cwd: repo,
      env: shell,
      extendEnv: false,
      reject: false,
    });
}

test("the app, its before_start_command and labtest exec see the same clean base and the experiment's variables, nothing of the shell that ran labtest", async () => {
  const lab = await experimentLab();
  const repo = await cleanApp(
    "before_start_command: node -e \"require('fs').writeFileSync('migrated', process.env.PATH)\"",
    "services:",
    "  db: { provider: local, service: postgresql }",
  );
  const shell = await developerShell(lab);
  const labtest = labtestFrom(shell, lab, repo);

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
      ...["EXPERIMENT_URL", "PORT", "GREETING", "LABTEST_CHECKOUT"],
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
  expect(variables(printed.stdout)).toEqual(env);
  expect((await labtest("exec", "main", "--", "cat", "migrated")).stdout).toBe(SYSTEM_PATH);
  expect(
    (await labtest("exec", "main", "--", "python3", "-c", "import sys; print(sys.executable)")).stdout,
  ).toBe("/usr/bin/python3");
  // libpq's variables: psql reaches the experiment's database with no argument.
  const psql = await labtest("exec", "main", "--", "psql", "-Atc", "SELECT current_database(), current_user");
  expect(psql.stdout, psql.stderr).toBe(`${env.DB_NAME}|${env.DB_USER}`);
});

test("through an HTTPS laboratory the app, its build and labtest exec see what they see on the embedded one, whatever the laptop's shell holds", async () => {
  const lab = await experimentLab();
  const repo = await cleanApp(
    "app_build_command: node -e \"require('fs').writeFileSync('built', JSON.stringify(process.env))\"",
  );
  const shell = await developerShell(lab);
  const labEnv = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const laboratory = new EmbeddedLaboratory({ env: labEnv, cwd: lab.home, statePath: lab.statePath });
  const { server, tokens, fingerprint } = await servedLaboratory(lab.home, laboratory);
  const { PATH, HOME, LANG, TZ, FOO } = shell;
  const laptop = { ...(await laptopEnv()), PATH, HOME, LANG, TZ, FOO, LABTEST_HOST: server.url };
  const token = tokens.create({ name: "dev", scope: "deploy" }).token;
  const loggedIn = await login(server, laptop, token, "--fingerprint", fingerprint);
  expect(loggedIn.code, loggedIn.stderr).toBe(0);
  const embedded = labtestFrom(shell, lab, repo);
  const remote = (...argv: string[]) => runCli(argv, repo, laptop);

  /** The app's, the build's and exec's environments of experiment main, created by `create`. */
  async function seen(
    create: () => Promise<unknown>,
    exec: (...argv: string[]) => Promise<{ stdout: string }>,
  ) {
    await create();
    const app = JSON.parse((await viaRouter(lab.routerPort, "clean-main.localhost")).body) as {
      env: Record<string, string>;
    };
    const built = JSON.parse((await exec("exec", "main", "--", "cat", "built")).stdout) as Record<
      string,
      string
    >;
    return { app: app.env, built, exec: variables((await exec("exec", "main", "--", "env", "-0")).stdout) };
  }
  const throughHttps = await seen(async () => {
    const created = await remote("create", "main");
    expect(created.code, created.stderr).toBe(0);
  }, remote);
  expect((await remote("delete", "main")).code).toBe(0);
  const onTheLaboratory = await seen(async () => {
    const created = await embedded("create", "main");
    expect(created.exitCode, created.stderr).toBe(0);
  }, embedded);

  // The port the app listens on and its release's checkout are chosen afresh for each creation;
  // all else is the same.
  const { PORT: remotePort, LABTEST_CHECKOUT: remoteCheckout, ...remoteApp } = throughHttps.app;
  const { PORT: embeddedPort, LABTEST_CHECKOUT: embeddedCheckout, ...embeddedApp } = onTheLaboratory.app;
  expect(remoteApp).toEqual(embeddedApp);
  const afresh = { PORT: "", LABTEST_CHECKOUT: "" };
  expect({ ...throughHttps.exec, ...afresh }).toEqual({ ...onTheLaboratory.exec, ...afresh });
  expect([remoteCheckout, embeddedCheckout]).toEqual([
    expect.stringContaining(`${lab.home}/experiments/clean/main/releases/`),
    expect.stringContaining(`${lab.home}/experiments/clean/main/releases/`),
  ]);
  expect(throughHttps.built).toEqual(onTheLaboratory.built);
  expect(throughHttps.exec).toEqual(throughHttps.app);
  expect(remotePort).toMatch(/^\d+$/);
  expect(embeddedPort).toMatch(/^\d+$/);
  // The build starts from the same base as the app, with the experiment's variables over it.
  expect(throughHttps.built).toMatchObject({
    PATH: SYSTEM_PATH,
    HOME: remoteApp.HOME,
    LANG: "C.UTF-8",
    USER: remoteApp.USER,
    APP_NAME: "clean",
    EXPERIMENT: "main",
    GREETING: "hello",
  });
  for (const seenBy of [remoteApp, throughHttps.built]) {
    expect(seenBy.TZ).toBeUndefined();
    expect(seenBy.FOO).toBeUndefined();
  }
});
