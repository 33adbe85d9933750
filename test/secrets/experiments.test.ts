import { appendFile, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { text } from "node:stream/consumers";
import { execa } from "execa";
import { expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { runCli } from "../support/cli.js";
import { commit, exampleRepo, experimentLab, setConfig } from "../support/experiments.js";
import { ageSecrets } from "../support/laboratory.js";
import { scratchDir } from "../support/project.js";

const SECRET = "tok-s3cret-4711";
const LABTEST = join(import.meta.dirname, "../../bin/labtest.js");

/** Every file under `directory` whose name says it is a log. */
async function logFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && /\.log$|log\.txt$/.test(e.name))
    .map((e) => join(e.parentPath, e.name));
}

test("a value a developer encrypted reaches the app; no command's output nor the laboratory's logs show it", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  await ageSecrets(lab);

  // The developer has the laboratory's state (the recipient), not its identity.
  const developer = { ...process.env, LABTEST_HOME: await scratchDir("labtest-dev-") };
  const encrypted = await runCli(
    ["--state", lab.statePath, "encrypt", "-"],
    repo,
    developer,
    `API_TOKEN=${SECRET}\n`,
  );
  expect(encrypted.code).toBe(0);
  const assignment = encrypted.stdout.trim();
  expect(assignment).toMatch(/^API_TOKEN=ENC\[[A-Za-z0-9+/=]+\]$/);
  await setConfig(repo, (t) =>
    t.replace("    - GREETING=Hello from labtest", `    - GREETING=Hello from labtest\n    - ${assignment}`),
  );
  await commit(repo, "a secret token");

  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const outputs: string[] = [];
  const run = async (...argv: string[]) => {
    const result = await runCli(["--state", lab.statePath, ...argv], repo, env);
    outputs.push(`$ labtest ${argv.join(" ")}\n${result.stdout}${result.stderr}`);
    return result;
  };
  expect((await run("create", "main")).code).toBe(0);

  // The app's environment has the plaintext.
  const stdout = new PassThrough();
  const printed = text(stdout);
  const loaded = await loadConfig({ cwd: repo });
  expect(
    await lab.experiments.exec({ config: loaded, subdirectory: "" }, "main", ["printenv", "API_TOKEN"], {
      stdout,
      stderr: new PassThrough(),
    }),
  ).toBe(0);
  stdout.end();
  expect(await printed).toBe(`${SECRET}\n`);
  // The file that hands it to the supervised app is the owner's only.
  const specs = (await readdir(lab.experiments.directory({ app: "hello", name: "main" }))).filter((f) =>
    f.startsWith("supervisor-"),
  );
  for (const spec of specs)
    expect(
      (await stat(join(lab.experiments.directory({ app: "hello", name: "main" }), spec))).mode & 0o777,
    ).toBe(0o600);

  for (const argv of [
    ["create", "main"],
    ["list"],
    ["--json", "list"],
    ["status", "main"],
    ["--json", "status", "main"],
    ["check-config"],
    ["--json", "check-config"],
    ["logs", "main"],
    ["services", "list"],
  ])
    await run(...argv);
  const execd = await run("exec", "main", "--", "printenv", "API_TOKEN");
  expect(execd.stdout).toBe("***\n");

  // A migration that prints the token and fails: the error shows its output, masked.
  await setConfig(repo, (t) =>
    t.replace(
      "before_start_command: node migrate.js",
      `before_start_command: sh -c "echo the token is $API_TOKEN; exit 5"`,
    ),
  );
  await commit(repo, "a migration that leaks");
  const failed = await run("update", "main");
  expect(failed.code).not.toBe(0);
  expect(failed.stderr).toContain("the token is ***");

  // A damaged value: an error naming the key, and nothing started.
  const body = assignment.slice("API_TOKEN=ENC[".length, -1);
  await setConfig(repo, (t) =>
    t.replace(
      assignment,
      `API_TOKEN=ENC[${body.slice(0, 90)}${body[90] === "A" ? "B" : "A"}${body.slice(91)}]`,
    ),
  );
  await commit(repo, "a damaged secret");
  const damaged = await run("create", "main", "--name", "other");
  expect(damaged.code).toBe(1);
  expect(damaged.stderr).toMatch(/cannot decrypt .*labtest\.environment\.API_TOKEN/);
  expect(lab.experiments.registry.get("hello", "other")).toBeUndefined();
  expect(await lab.services.list("hello", "other")).toEqual([]);

  const logs = await logFiles(lab.home);
  expect(logs.map((l) => l.slice(lab.home.length))).toContain("/experiments/hello/main/app.log");
  for (const log of logs) expect(await readFile(log, "utf8")).not.toContain(SECRET);

  // An app that prints its own secret: `labtest logs`, in a process of its own that has revealed
  // nothing yet, masks it too.
  await appendFile(
    join(lab.experiments.directory({ app: "hello", name: "main" }), "app.log"),
    `token=${SECRET}\n`,
  );
  const logged = await execa(process.execPath, [LABTEST, "--state", lab.statePath, "logs", "main"], {
    cwd: repo,
    env,
  });
  expect(logged.stdout).toContain("token=***");
  outputs.push(logged.stdout + logged.stderr);
  await run("delete", "main");
  await run("gc", "--grace", "0");
  for (const output of outputs) expect(output).not.toContain(SECRET);
});
