import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, test } from "vitest";
import { runCli } from "../support/cli.js";
import { commit, exampleRepo, experimentLab, setConfig } from "../support/experiments.js";
import { ageSecrets } from "../support/laboratory.js";
import { scratchDir } from "../support/project.js";

// A secret that JSON escapes (" and \) and a URL percent-encodes (@).
const SECRET = 'p"q\\zW0rd@4711';
const LABTEST = join(import.meta.dirname, "../../bin/labtest.js");

/** The spellings of SECRET that output must never carry. */
const SPELLINGS = [SECRET, JSON.stringify(SECRET).slice(1, -1), encodeURIComponent(SECRET)];

/** The example app without services, with `files` added and API_TOKEN=SECRET encrypted for `lab`. */
async function leakyApp(statePath: string, files: Record<string, string>): Promise<string> {
  const repo = await exampleRepo();
  const developer = { ...process.env, LABTEST_HOME: await scratchDir("labtest-dev-") };
  const encrypted = await runCli(
    ["--state", statePath, "encrypt", "-"],
    repo,
    developer,
    `API_TOKEN=${SECRET}\n`,
  );
  expect(encrypted.code).toBe(0);
  for (const [name, text] of Object.entries(files)) await writeFile(join(repo, name), text);
  await setConfig(repo, (t) =>
    t
      .replace("    - GREETING=Hello from labtest", `    - ${encrypted.stdout.trim()}`)
      .replace("before_start_command: node migrate.js", "before_start_command: node --version")
      .replace("start_command: node server.js", "start_command: node heartbeat.js")
      .replace(/ {2}services:[\s\S]*$/, ""),
  );
  await commit(repo, "an app that prints its token");
  return repo;
}

test("an app's secret split across writes, JSON-escaped or URL-encoded is masked in exec, logs --follow and --json", async () => {
  const lab = await experimentLab();
  await ageSecrets(lab);
  const repo = await leakyApp(lab.statePath, {
    // A logger that flushes a line in two writes, a moment apart.
    "heartbeat.js": [
      'import "./server.js";',
      'const token = process.env.API_TOKEN ?? "";',
      "setInterval(() => {",
      "  process.stdout.write('token=' + token.slice(0, 5));",
      "  setTimeout(() => process.stdout.write(token.slice(5) + '\\n'), 600);",
      "}, 1200);",
      "",
    ].join("\n"),
    "leak.js": [
      "const token = process.env.API_TOKEN;",
      "console.log('the token is ' + token);",
      "console.log('connecting to postgresql://app:' + encodeURIComponent(token) + '@db/app');",
      "process.exit(5);",
      "",
    ].join("\n"),
  });
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const labtest = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);
  expect((await labtest("create", "main")).code).toBe(0);

  const execd = await labtest(
    "exec",
    "main",
    "--",
    "node",
    "-e",
    [
      "const s = process.env.API_TOKEN;",
      "process.stdout.write(s.slice(0, 5));",
      "process.stderr.write(s.slice(0, 2));",
      "setTimeout(() => process.stderr.write(s.slice(2, 9)), 200);",
      "setTimeout(() => { process.stdout.write(s.slice(5) + '\\n'); process.stderr.write(s.slice(9) + '!'); }, 400);",
    ].join("\n"),
  );
  // Soft: every leak is reported, not only the first.
  expect.soft(execd).toEqual({ code: 0, stdout: "***\n", stderr: "***!" });

  // `logs --follow` in a process of its own, as a developer runs it, until interrupted.
  const follow = execa(process.execPath, [LABTEST, "--state", lab.statePath, "logs", "main", "--follow"], {
    cwd: repo,
    env,
  });
  let followed = "";
  // Whole lines: a beat's second write comes 600 ms after its first, and Ctrl-C between them
  // rightly ends its line as far as it came (token=***, masked, without its newline).
  const beats = () => (followed.match(/token=[^\n]*\n/g) ?? []).length;
  // The first read is the log so far; the beats after it are the ones followed as they come.
  let before: number | undefined;
  follow.stdout?.on("data", (chunk: Buffer) => {
    followed += chunk.toString();
    before ??= beats();
  });
  const deadline = Date.now() + 15_000;
  while ((before === undefined || beats() < before + 3) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 100));
  follow.kill("SIGINT");
  const ended = await follow;
  expect(ended.exitCode).toBe(0);
  // What it printed, as read: execa's ended.stdout drops a final newline.
  expect.soft(followed).toContain("token=***\ntoken=***\ntoken=***\n");

  // A migration that prints the token and fails: --json carries its output JSON-escaped.
  await setConfig(repo, (t) =>
    t.replace("before_start_command: node --version", "before_start_command: node leak.js"),
  );
  await commit(repo, "a migration that leaks");
  const failed = await labtest("--json", "update", "main");
  expect(failed.code).not.toBe(0);
  const { error } = JSON.parse(failed.stdout) as { error: { message: string } };
  expect.soft(error.message).toContain("the token is ***\n");
  expect.soft(error.message).toContain("connecting to postgresql://app:***@db/app");
  const text = await labtest("update", "main");
  expect.soft(text.stderr).toContain("connecting to postgresql://app:***@db/app");

  for (const output of [execd, ended, failed, text])
    for (const spelling of SPELLINGS) expect.soft(`${output.stdout}${output.stderr}`).not.toContain(spelling);
});

test("labtest encrypt refuses a value too short to be a secret, without printing it", async () => {
  const repo = await exampleRepo();
  const env = { ...process.env, LABTEST_HOME: await scratchDir("labtest-dev-") };
  for (const [argv, stdin] of [
    [["encrypt", "API_TOKEN=s3cr3t7"], ""],
    [["encrypt", "-"], "API_TOKEN=s3cr3t7\n"],
    [["encrypt", "--whole", "s3cr3t7"], ""],
    [["--json", "encrypt", "API_TOKEN="], ""],
  ] as const) {
    const refused = await runCli([...argv], repo, env, stdin);
    expect(refused.code).toBe(2);
    expect(`${refused.stdout}${refused.stderr}`).toMatch(
      /too short to be a secret[\s\S]*8 characters or more/,
    );
    expect(`${refused.stdout}${refused.stderr}`).not.toContain("s3cr3t7");
  }
  expect((await runCli(["encrypt", "API_TOKEN=s3cr3t7"], repo, env)).stderr).toMatch(
    /API_TOKEN: 7 characters/,
  );
});
