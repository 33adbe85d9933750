// An app that prints its secret every way output can carry it, for the masking tests of the
// embedded laboratory (masking.test.ts) and of a remote one (remote-masking.test.ts).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect } from "vitest";
import { runCli } from "../support/cli.js";
import { commit, exampleRepo, setConfig } from "../support/experiments.js";
import { scratchDir } from "../support/project.js";

/** A secret that JSON escapes (" and \) and a URL percent-encodes (@). */
export const SECRET = 'p"q\\zW0rd@4711';

/** The spellings of SECRET that output must never carry. */
export const SPELLINGS = [SECRET, JSON.stringify(SECRET).slice(1, -1), encodeURIComponent(SECRET)];

/** The app's program: the example server, and a logger that flushes `token=SECRET` in two writes, a moment apart. */
const HEARTBEAT = [
  'import "./server.js";',
  'const token = process.env.API_TOKEN ?? "";',
  "setInterval(() => {",
  "  process.stdout.write('token=' + token.slice(0, 5));",
  "  setTimeout(() => process.stdout.write(token.slice(5) + '\\n'), 600);",
  "}, 1200);",
  "",
].join("\n");

/** A migration that prints the token as is and URL-encoded, then fails. */
const LEAK = [
  "const token = process.env.API_TOKEN;",
  "console.log('the token is ' + token);",
  "console.log('connecting to postgresql://app:' + encodeURIComponent(token) + '@db/app');",
  "process.exit(5);",
  "",
].join("\n");

/** `labtest exec` argv that writes SECRET cut across stdout and stderr writes; masked, it prints `***\n` and `***!`. */
export const SPLIT_WRITES = [
  "node",
  "-e",
  [
    "const s = process.env.API_TOKEN;",
    "process.stdout.write(s.slice(0, 5));",
    "process.stderr.write(s.slice(0, 2));",
    "setTimeout(() => process.stderr.write(s.slice(2, 9)), 200);",
    "setTimeout(() => { process.stdout.write(s.slice(5) + '\\n'); process.stderr.write(s.slice(9) + '!'); }, 400);",
  ].join("\n"),
];

/**
 * The example app without services, API_TOKEN=SECRET encrypted for the laboratory of
 * `statePath`, started as the heartbeat logger; its migration is `node leak.js` after
 * `leakInMigration`.
 */
export async function leakyApp(statePath: string): Promise<string> {
  const repo = await exampleRepo();
  const developer = { ...process.env, LABTEST_HOME: await scratchDir("labtest-dev-") };
  const encrypted = await runCli(
    ["--state", statePath, "encrypt", "-"],
    repo,
    developer,
    `API_TOKEN=${SECRET}\n`,
  );
  expect(encrypted.code).toBe(0);
  await writeFile(join(repo, "heartbeat.js"), HEARTBEAT);
  await writeFile(join(repo, "leak.js"), LEAK);
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

/** Makes the app's migration print the token and fail, committed: an update's error then carries it. */
export async function leakInMigration(repo: string): Promise<void> {
  await setConfig(repo, (t) =>
    t.replace("before_start_command: node --version", "before_start_command: node leak.js"),
  );
  await commit(repo, "a migration that leaks");
}

const LABTEST = join(import.meta.dirname, "../../bin/labtest.js");

/**
 * `labtest <argv> logs main --follow` in a process of its own, as a developer runs it, interrupted
 * (Ctrl-C) once three heartbeats have come after the log so far: what it printed (stdout as read:
 * execa's drops a final newline), and its exit code.
 */
export async function followedHeartbeats(
  argv: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ stdout: string; stderr: string; exitCode: number | undefined }> {
  const follow = execa(process.execPath, [LABTEST, ...argv, "logs", "main", "--follow"], {
    cwd,
    env,
    reject: false,
  });
  let printed = "";
  // Whole lines: a beat's second write comes 600 ms after its first, and Ctrl-C between them
  // rightly ends its line as far as it came (token=***, masked, without its newline).
  const beats = () => (printed.match(/token=[^\n]*\n/g) ?? []).length;
  // The first read is the log so far; the beats after it are the ones followed as they come.
  let before: number | undefined;
  follow.stdout?.on("data", (chunk: Buffer) => {
    printed += chunk.toString();
    before ??= beats();
  });
  const deadline = Date.now() + 15_000;
  while ((before === undefined || beats() < before + 3) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 100));
  follow.kill("SIGINT");
  const ended = await follow;
  return { stdout: printed, stderr: ended.stderr, exitCode: ended.exitCode };
}
