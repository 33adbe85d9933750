import { join } from "node:path";
import { PassThrough } from "node:stream";
import { text } from "node:stream/consumers";
import { execa } from "execa";
import { expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { UsageError } from "../../src/errors.js";
import { EmbeddedLaboratory, type LaboratoryEvent } from "../../src/laboratory/index.js";
import type { Laboratory } from "../../src/laboratory/laboratory.js";
import { PROTOCOL_VERSION as v } from "../../src/laboratory/protocol.js";
import { rememberSecret } from "../../src/secrets/mask.js";
import { serveStdio } from "../../src/server/stdio.js";
import { exampleRepo, experimentLab } from "../support/experiments.js";
import { ageSecrets } from "../support/laboratory.js";
import { scratchDir } from "../support/project.js";
import { laptopEnv, login, servedLaboratory } from "../support/remote.js";
import {
  followedHeartbeats,
  leakInMigration,
  leakyApp,
  SECRET,
  SPELLINGS,
  SPLIT_WRITES,
} from "./leaky-app.js";

const LABTEST = join(import.meta.dirname, "../../bin/labtest.js");

// The laptop never revealed the secret, so it cannot mask it: the laboratory masks what it answers.
test("a remote laboratory masks an app's secret in exec, logs, logs --follow and --json answers before they leave it", async () => {
  const lab = await experimentLab();
  await ageSecrets(lab);
  const labEnv = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const laboratory = new EmbeddedLaboratory({
    env: labEnv,
    cwd: lab.home,
    statePath: lab.statePath,
    acceptsLocalPaths: false,
  });
  const { server, tokens, fingerprint } = await servedLaboratory(lab.home, laboratory);
  const laptop = { ...(await laptopEnv()), LABTEST_HOST: server.url };
  const loggedIn = await login(
    server,
    laptop,
    tokens.create({ name: "dev", scope: "deploy" }).token,
    "--fingerprint",
    fingerprint,
  );
  expect(loggedIn.code, loggedIn.stderr).toBe(0);
  const repo = await leakyApp(lab.statePath);
  // In a process of its own, as on a laptop: this one is the laboratory, which revealed the secret.
  const labtest = (...argv: string[]) =>
    execa(process.execPath, [LABTEST, ...argv], { cwd: repo, env: laptop, reject: false });

  const created = await labtest("create", "--push", "main");
  expect(created.exitCode, created.stderr).toBe(0);

  const execd = await labtest("exec", "main", "--", ...SPLIT_WRITES);
  // Soft: every leak is reported, not only the first.
  expect.soft({ code: execd.exitCode, stdout: execd.stdout, stderr: execd.stderr }).toEqual({
    code: 0,
    stdout: "***",
    stderr: "***!",
  });

  const logs = await labtest("logs", "main");
  expect.soft(logs.stdout).toMatch(/^token=\*\*\*$/m);

  const followed = await followedHeartbeats([], repo, laptop);
  expect(followed.exitCode).toBe(0);
  expect.soft(followed.stdout).toContain("token=***\ntoken=***\ntoken=***\n");

  const status = await labtest("--json", "status", "main");
  expect(status.exitCode, status.stderr).toBe(0);

  // A migration that prints the token and fails: the error carries its output.
  await leakInMigration(repo);
  const failed = await labtest("--json", "update", "--push", "main");
  expect(failed.exitCode).not.toBe(0);
  const { error } = JSON.parse(failed.stdout) as { error: { message: string } };
  expect.soft(error.message).toContain("the token is ***\n");
  expect.soft(error.message).toContain("connecting to postgresql://app:***@db/app");
  const text = await labtest("update", "--push", "main");
  expect.soft(text.stderr).toContain("connecting to postgresql://app:***@db/app");

  for (const output of [created, execd, logs, followed, status, failed, text])
    for (const spelling of SPELLINGS) expect.soft(`${output.stdout}${output.stderr}`).not.toContain(spelling);
});

/** One SSH session of `labtest request` served in this process (as the forced command and the daemon serve it) on `laboratory`. */
async function sshSession(laboratory: Partial<Laboratory>, kind: string, request: unknown) {
  const input = new PassThrough();
  const output = new PassThrough();
  const answer = text(output);
  const served = serveStdio({
    env: { SSH_ORIGINAL_COMMAND: "labtest request", SSH_CLIENT: "192.0.2.7 50000 22" },
    home: await scratchDir(),
    keyName: "dev",
    identify: () => ({ name: "dev", scope: "deploy", apps: [] }),
    laboratory: () => ({ close: async () => undefined, ...laboratory }) as Laboratory,
    audit: { record: async () => undefined },
    input,
    output,
    stderr: () => undefined,
  });
  input.end(`${JSON.stringify({ kind, request })}\n`);
  await served;
  return answer;
}

test("over SSH, the laboratory masks a secret its program's output cuts across writes, its results and its errors", async () => {
  rememberSecret(SECRET);
  const project = { config: await loadConfig({ cwd: await exampleRepo() }), subdirectory: "" };
  const exec = { v, project, name: "main", argv: ["node", "leak.js"] };
  const leaking: Partial<Laboratory> = {
    exec: async (_request, events) => {
      for (const text of ["token=", SECRET.slice(0, 5), `${SECRET.slice(5)}\n`])
        events({ type: "stdout", text });
      for (const text of [SECRET.slice(0, 9), `${SECRET.slice(9)}!`]) events({ type: "stderr", text });
      events({ type: "step", text: `connecting to ${encodeURIComponent(SECRET)}` });
      throw new UsageError(`it printed ${SECRET}`, [{ where: "node leak.js", what: SECRET }]);
    },
    status: async () => ({ environment: { API_TOKEN: SECRET } }) as never,
  };

  const execd = await sshSession(leaking, "exec", exec);
  const lines = execd
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line));
  const events = lines.flatMap((line: { event?: LaboratoryEvent }) => (line.event ? [line.event] : []));
  const printed = (type: string) =>
    events
      .filter((event) => event.type === type)
      .map((event) => event.text)
      .join("");
  expect({ stdout: printed("stdout"), stderr: printed("stderr"), step: printed("step") }).toEqual({
    stdout: "token=***\n",
    stderr: "***!",
    step: "connecting to ***",
  });
  expect(lines.at(-1).error).toMatchObject({ summary: "it printed ***", problems: [{ what: "***" }] });
  const status = await sshSession(leaking, "status", { v, project, name: "main" });
  expect(JSON.parse(status)).toEqual({ result: { environment: { API_TOKEN: "***" } } });

  for (const answer of [execd, status])
    for (const spelling of [...SPELLINGS, JSON.stringify(JSON.stringify(SECRET)).slice(1, -1)])
      expect.soft(answer).not.toContain(spelling);
});
