import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, onTestFinished, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { UsageError } from "../../src/errors.js";
import {
  EmbeddedLaboratory,
  type LaboratoryEvent,
  openLaboratory,
  PROTOCOL_VERSION,
  SshLaboratory,
} from "../../src/laboratory/index.js";
import { runCli } from "../support/cli.js";
import { copyExample } from "../support/example-app.js";
import { commit, exampleRepo, experimentLab, setConfig, viaRouter } from "../support/experiments.js";
import { gitRepo, scratchDir } from "../support/project.js";

/** A request as it crosses a wire: only what JSON carries arrives. */
const wire = <T>(request: T): T => JSON.parse(JSON.stringify(request)) as T;

test("a whole lifecycle through the Laboratory interface, every request plain JSON, gives what the CLI gives", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const laboratory = new EmbeddedLaboratory({ env, cwd: repo, statePath: lab.statePath });
  onTestFinished(() => laboratory.close());
  const project = { config: await loadConfig({ cwd: repo }), subdirectory: "" };
  const v = PROTOCOL_VERSION;

  const steps: LaboratoryEvent[] = [];
  const created = await laboratory.create(wire({ v, project, branch: "main" }), (e) => steps.push(e));
  expect(created).toMatchObject({ app: "hello", name: "main", status: "running" });
  expect(steps.map((e) => e.type)).toContain("step");
  expect((await viaRouter(lab.routerPort, created.host)).status).toBe(200);

  const listed = await laboratory.list(wire({ v, app: "hello" }));
  const cli = await runCli(["--state", lab.statePath, "list", "--json"], repo, env);
  expect(cli.code).toBe(0);
  const fromCli = (
    JSON.parse(cli.stdout) as { experiments: { name: string; url: string; release: string }[] }
  ).experiments;
  expect(listed.map(({ name, url, release }) => ({ name, url, release }))).toEqual(
    fromCli.map(({ name, url, release }) => ({ name, url, release })),
  );

  const output: LaboratoryEvent[] = [];
  const ran = await laboratory.exec(
    wire({
      v,
      project,
      name: "main",
      argv: ["node", "-e", "console.log(process.env.EXPERIMENT); process.exit(3)"],
    }),
    (e) => output.push(e),
  );
  expect(ran).toEqual({ exitCode: 3 });
  expect(output).toEqual([{ type: "stdout", text: "main\n" }]);

  const env_ = await laboratory.servicesEnv(wire({ v, project, experiment: "main" }));
  expect(env_.DATABASE_URL).toMatch(/^postgresql:\/\//);
  expect((await laboratory.status(wire({ v, project, name: "main" })))?.status).toBe("running");

  expect(await laboratory.delete(wire({ v, app: "hello", name: "main" }))).toEqual({ deleted: "main" });
  expect(await laboratory.list(wire({ v, app: "hello" }))).toEqual([]);
  expect(await laboratory.status(wire({ v, project, name: "main" }))).toBeNull();
});

test("a request of another protocol version, or malformed, is refused as the client's error", async () => {
  const laboratory = new EmbeddedLaboratory({ env: process.env, cwd: process.cwd() });
  onTestFinished(() => laboratory.close());
  await expect(laboratory.list({ v: PROTOCOL_VERSION + 1 })).rejects.toThrow(
    /cannot take this list request[\s\S]*speaks protocol version 1/,
  );
  await expect(laboratory.delete({ v: PROTOCOL_VERSION, app: "hello" })).rejects.toBeInstanceOf(UsageError);
});

test("an SSH laboratory is reached through ssh, an HTTPS one only once logged in to; neither is served by this machine", async () => {
  const options = { env: { ...process.env, LABTEST_CONFIG_DIR: await scratchDir() }, cwd: process.cwd() };
  expect(await openLaboratory({ kind: "ssh", host: "lab.example.com" }, options)).toBeInstanceOf(
    SshLaboratory,
  );
  await expect(openLaboratory({ kind: "https", url: "https://lab.example.com/" }, options)).rejects.toThrow(
    /not logged in to the laboratory at https:\/\/lab\.example\.com[\s\S]*labtest login https:\/\/lab\.example\.com --token -/,
  );
  expect(await openLaboratory({ kind: "local" }, options)).toBeInstanceOf(EmbeddedLaboratory);
});

test("create, status and services up against an SSH laboratory that is not there say what ssh said, against an https:// one not logged in to say how to log in, and change nothing here", async () => {
  const repo = await exampleRepo();
  const env = { ...process.env, LABTEST_CONFIG_DIR: await scratchDir() };
  const refusals = {
    "ssh://deploy@127.0.0.1:1": {
      code: 1,
      says: /ssh could not reach the laboratory at ssh:\/\/deploy@127\.0\.0\.1:1\n.*port 1: Connection refused[\s\S]*fix: check the laboratory's address/,
    },
    "deploy@127.0.0.1:1": {
      code: 1,
      says: /ssh could not reach the laboratory at ssh:\/\/deploy@127\.0\.0\.1:1/,
    },
    "https://lab.example.com": {
      code: 77,
      says: /not logged in to the laboratory at https:\/\/lab\.example\.com[\s\S]*fix: labtest login/,
    },
  };
  for (const [host, refusal] of Object.entries(refusals)) {
    await setConfig(repo, (text) =>
      text.replace(/^ {2}host: .*\n/m, "").replace("labtest:\n", `labtest:\n  host: ${host}\n`),
    );
    for (const argv of [
      ["create", "main"],
      ["status", "main"],
      ["services", "up"],
    ]) {
      const { code, stdout, stderr } = await runCli(argv, repo, env);
      expect(code, `${host} ${argv.join(" ")}`).toBe(refusal.code);
      expect(stdout).toBe("");
      expect(stderr).toMatch(refusal.says);
    }
  }
});

test("an app in a subdirectory of its repository runs from there, from where the request says, with the working copy gone", async () => {
  const lab = await experimentLab();
  // The example app in apps/hello of a larger repository, its build linking this project's packages.
  const origin = await gitRepo("monorepo");
  const app = join(origin, "apps", "hello");
  await copyExample(app);
  const config = join(app, ".labtest.yml");
  const linked = `app_build_command: ln -s ${join(import.meta.dirname, "../../node_modules")} node_modules`;
  await writeFile(config, (await readFile(config, "utf8")).replace(/app_build_command: .*/, linked));
  await commit(origin, "the example app, in a subdirectory");
  const workingCopy = join(await scratchDir(), "monorepo");
  await execa("git", ["clone", "-q", origin, workingCopy]);

  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const laboratory = new EmbeddedLaboratory({ env, cwd: workingCopy, statePath: lab.statePath });
  onTestFinished(() => laboratory.close());
  const v = PROTOCOL_VERSION;
  const project = {
    config: await loadConfig({ cwd: join(workingCopy, "apps", "hello") }),
    subdirectory: join("apps", "hello"),
  };
  const create = wire({ v, project, branch: "main" });
  const update = wire({ v, project, name: "main" });
  const exec = wire({ v, project, name: "main", argv: ["node", "-e", "console.log(process.cwd())"] });
  // What the laboratory knows of the working copy is in the requests: it may be gone by now.
  await rename(workingCopy, `${workingCopy}-moved`);

  const created = await laboratory.create(create);
  expect(created).toMatchObject({ name: "main", status: "running" });
  expect((await viaRouter(lab.routerPort, created.host)).body).toContain("Hello from labtest");
  const output: LaboratoryEvent[] = [];
  expect(await laboratory.exec(exec, (e) => output.push(e))).toEqual({ exitCode: 0 });
  expect(output.map((e) => e.text).join("")).toMatch(/\/releases\/\d+\/apps\/hello\n$/);
  await writeFile(join(app, "VERSION"), "2\n");
  await commit(origin, "a second commit");
  const updated = await laboratory.update(update);
  expect(updated.release).not.toBe(created.release);
  expect((await viaRouter(lab.routerPort, updated.host)).body).toContain("Hello from labtest");
});

test("a project whose subdirectory leaves its repository is refused as the client's error", async () => {
  const laboratory = new EmbeddedLaboratory({ env: process.env, cwd: process.cwd() });
  onTestFinished(() => laboratory.close());
  const config = await loadConfig({ cwd: await exampleRepo() });
  for (const subdirectory of ["../elsewhere", "/etc", "apps/../../up"])
    await expect(
      laboratory.create(wire({ v: PROTOCOL_VERSION, project: { config, subdirectory }, branch: "main" })),
    ).rejects.toThrow(
      /cannot take this create request[\s\S]*project\.subdirectory: a path inside the repository/,
    );
});
