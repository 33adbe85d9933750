import { expect, test } from "vitest";
import { runCli } from "../support/cli.js";
import { exampleRepo, experimentLab } from "../support/experiments.js";
import { ageSecrets } from "../support/laboratory.js";
import { scratchDir } from "../support/project.js";
import { followedHeartbeats, leakInMigration, leakyApp, SPELLINGS, SPLIT_WRITES } from "./leaky-app.js";

test("an app's secret split across writes, JSON-escaped or URL-encoded is masked in exec, logs --follow and --json", async () => {
  const lab = await experimentLab();
  await ageSecrets(lab);
  const repo = await leakyApp(lab.statePath);
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const labtest = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);
  expect((await labtest("create", "main")).code).toBe(0);

  const execd = await labtest("exec", "main", "--", ...SPLIT_WRITES);
  // Soft: every leak is reported, not only the first.
  expect.soft(execd).toEqual({ code: 0, stdout: "***\n", stderr: "***!" });

  const ended = await followedHeartbeats(["--state", lab.statePath], repo, env);
  expect(ended.exitCode).toBe(0);
  expect.soft(ended.stdout).toContain("token=***\ntoken=***\ntoken=***\n");

  // A migration that prints the token and fails: --json carries its output JSON-escaped.
  await leakInMigration(repo);
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
