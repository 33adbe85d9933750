// A laptop's labtest against a laboratory reached over SSH: a real sshd, the laboratory user's
// forced command (labtest serve --stdio, the built CLI), and the laptop's own ssh (LABTEST_SSH).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chown, cp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, onTestFinished, test } from "vitest";
import { runCli } from "../support/cli.js";
import { commit, viaRouter } from "../support/experiments.js";
import { gitRepo, scratchDir } from "../support/project.js";
import { laptopEnv } from "../support/remote.js";
import { LABTEST_JS, startTestSshd, type TestSshd } from "../support/sshd.js";

// The forced command runs the built CLI (bin/labtest.js → dist/), as a laboratory's would: the
// test command builds it first. Building here too rewrote dist/ under the other test files'
// labtest processes, which then read half-written modules.

const APP_SERVER = `const fs = require("fs");
console.log("listening on", process.env.PORT);
require("http")
  .createServer((q, s) => { console.log("served", q.url); s.end(fs.readFileSync("message.txt", "utf8")); })
  .listen(process.env.PORT);
`;

/** A repository that exists only on the laptop: no remote, code_repo_url its own path. */
async function laptopRepository(): Promise<string> {
  const repo = await gitRepo("hello");
  await writeFile(join(repo, "server.js"), APP_SERVER);
  await writeFile(
    join(repo, ".labtest.yml"),
    "labtest:\n  app_name: hello\n  start_command: node server.js\n",
  );
  await commitMessage(repo, "first");
  return repo;
}

/** A commit whose only change is the page the app serves. */
async function commitMessage(repo: string, message: string): Promise<void> {
  await writeFile(join(repo, "message.txt"), message);
  await commit(repo, message);
}

/**
 * The test sshd with a deploy key added by the laboratory user, its router started, and a laptop
 * whose ssh (LABTEST_SSH) reaches it as `lab` or as 127.0.0.1 with that key; ssh's master
 * connections in a runtime directory of the test's, closed when it ends.
 */
async function sshLaboratory() {
  const sshd = await startTestSshd();
  const client = await sshd.client("dev");
  const publicKey = join(sshd.user.home, "dev.pub");
  await writeFile(publicKey, `${client.publicKey}\n`);
  await chown(publicKey, sshd.user.uid, sshd.user.uid);
  const added = await sshd.labtestAsLabUser(["lab", "add-key", "dev", publicKey, "--scope", "deploy"]);
  expect(added.exitCode, String(added.stderr)).toBe(0);
  const routerPort = 20000 + Math.floor(Math.random() * 20000);
  const started = await sshd.labtestAsLabUser(["lab", "start", "--port", String(routerPort)]);
  expect(started.exitCode, String(started.stderr)).toBe(0);

  const config = `${client.config}.laptop`;
  const given = await readFile(client.config, "utf8");
  await writeFile(config, given.replace(/^Host lab$/m, "Host lab 127.0.0.1"));
  const runtime = await scratchDir("labtest-run-");
  const laptop = {
    ...(await laptopEnv()),
    LABTEST_SSH: `ssh -F ${config}`,
    XDG_RUNTIME_DIR: runtime,
    LABTEST_HOST: `ssh://${sshd.user.name}@127.0.0.1:${sshd.port}`,
  };
  onTestFinished(async () => {
    for (const socket of await controlSockets(runtime))
      await execa("ssh", ["-o", `ControlPath=${join(runtime, socket)}`, "-O", "exit", "lab"], {
        reject: false,
      });
  });
  return { sshd, laptop, routerPort, runtime };
}

async function controlSockets(runtime: string): Promise<string[]> {
  return (await readdir(runtime)).filter((name) => name.startsWith("labtest-ssh-"));
}

/** A copy of the laptop's working copy for the laboratory user, whose own labtest (the embedded laboratory) runs there. */
async function labCopy(sshd: TestSshd, repo: string): Promise<string> {
  const copy = join(sshd.user.home, "hello");
  await cp(repo, copy, { recursive: true });
  await execa("chown", ["-R", `${sshd.user.uid}:${sshd.user.uid}`, copy]);
  return copy;
}

/** status --json without what each status asks anew: the app's answer time, and its output (which the asking grows). */
function steady(json: string): unknown {
  const {
    answer,
    recentOutput: _,
    ...rest
  } = JSON.parse(json) as { answer: { ms?: number }; recentOutput: string[] };
  return { ...rest, answer: { ...answer, ms: undefined } };
}

function acceptedLogins(sshd: TestSshd): number {
  return sshd.log().match(/Accepted publickey/g)?.length ?? 0;
}

test.skipIf(process.getuid?.() !== 0)(
  "a whole lifecycle from a laptop through ssh://, the code pushed with git over the same connection, prints what the embedded laboratory prints",
  async () => {
    const { sshd, laptop, routerPort, runtime } = await sshLaboratory();
    const repo = await laptopRepository();
    const cli = (...argv: string[]) => runCli(argv, repo, laptop);

    const created = await cli("--verbose", "create", "main");
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).toMatch(/^… pushing main to the laboratory \(git push\)$/m);
    const url = /^hello\/main is running at (http:\/\/\S+)/.exec(created.stdout)?.[1];
    expect(url, created.stdout).toBeDefined();
    const host = new URL(url ?? "").hostname;
    expect(await viaRouter(routerPort, host)).toMatchObject({ status: 200, body: "first" });

    // One login: the requests and git's push went through one master connection.
    expect(await controlSockets(runtime)).toHaveLength(1);
    // (How little a warm connection costs is bench/remote.ts's to measure, not a test's.)
    const overSsh = await cli("list", "--json");
    expect(overSsh.code, overSsh.stderr).toBe(0);
    expect(acceptedLogins(sshd)).toBe(1);
    const copy = await labCopy(sshd, repo);
    const embedded = await sshd.labtestAsLabUser(["list", "--json"], { cwd: copy });
    expect(JSON.parse(overSsh.stdout)).toEqual(JSON.parse(String(embedded.stdout)));
    const status = await cli("status", "main", "--json");
    const embeddedStatus = await sshd.labtestAsLabUser(["status", "main", "--json"], { cwd: copy });
    expect(status.code, status.stderr).toBe(0);
    expect(steady(status.stdout)).toEqual(steady(String(embeddedStatus.stdout)));
    // The same laboratory as user@host:port, LabTest's bare form.
    const bare = await runCli(["--lab", `${sshd.user.name}@127.0.0.1:${sshd.port}`, "list"], repo, laptop);
    expect(bare).toMatchObject({ code: 0, stdout: expect.stringMatching(/^hello\/main /m) });

    await commitMessage(repo, "second");
    const updated = await cli("--verbose", "update", "main");
    expect(updated.code, updated.stderr).toBe(0);
    expect(updated.stdout).toMatch(/^hello\/main runs release [0-9a-f]{12} at http:/);
    expect(await viaRouter(routerPort, host)).toMatchObject({ status: 200, body: "second" });

    const ran = await cli(
      "exec",
      "main",
      "--",
      "node",
      "-e",
      "console.log(process.env.EXPERIMENT); process.exit(3)",
    );
    expect(ran).toMatchObject({ code: 3, stdout: "main\n" });

    const deleted = await cli("delete", "main");
    expect(deleted).toMatchObject({ code: 0, stdout: "deleted hello/main\n" });
    expect(await cli("list")).toMatchObject({ code: 0, stdout: "no experiments of hello\n" });

    // Nothing to delete, said as an embedded laboratory with no experiments of hello says it.
    const wrongName = await cli("delete", "Not_A_Name");
    const here = { ...laptop, LABTEST_HOST: "local", LABTEST_HOME: await scratchDir() };
    const wrongHere = await runCli(["delete", "Not_A_Name"], repo, here);
    expect(wrongName).toEqual(wrongHere);
    expect(wrongName.stderr).toMatch(/nothing to delete \(hello has no experiments on this laboratory\)/);
  },
  600_000,
);

test.skipIf(process.getuid?.() !== 0)(
  "logs --follow streams over ssh until Ctrl-C, which ends labtest with exit 0 and the laboratory's side of the session",
  async () => {
    const { sshd, laptop } = await sshLaboratory();
    const repo = await laptopRepository();
    expect((await runCli(["create", "main"], repo, laptop)).code).toBe(0);

    const follower = interruptible(["logs", "main", "--follow"], repo, laptop);
    await until(
      () => follower.output().includes("listening on"),
      () => follower.transcript(),
    );
    expect(await serving(sshd)).toBe(1);

    const [code, signal] = await follower.interrupt();
    expect({ code, signal, errors: follower.errors() }).toEqual({ code: 0, signal: null, errors: "" });
    await until(
      async () => (await serving(sshd)) === 0,
      () => "the laboratory still serves the session",
    );
  },
  600_000,
);

test.skipIf(process.getuid?.() !== 0)(
  "exec over ssh stops on Ctrl-C: labtest exits 130, and the command and what it started end on the laboratory too",
  async () => {
    const { sshd, laptop } = await sshLaboratory();
    const repo = await laptopRepository();
    expect((await runCli(["create", "main"], repo, laptop)).code).toBe(0);

    // The shell stays the sleep's parent (it has more to do): the whole tree has to end, not only the shell.
    const script = "echo started; sleep 303; echo after";
    const sleeping = () => runningAsLabUser(sshd, (line) => line === "sleep 303");
    const exec = interruptible(["exec", "main", "--", "sh", "-c", script], repo, laptop);
    await until(
      () => exec.output().includes("started"),
      () => exec.transcript(),
    );
    expect(await sleeping()).toBe(1);
    expect(await serving(sshd)).toBe(1);

    const interrupted = Date.now();
    const [code, signal] = await exec.interrupt();
    expect({ code, signal, errors: exec.errors() }).toEqual({ code: 130, signal: null, errors: "" });
    expect(Date.now() - interrupted).toBeLessThan(5000);
    await until(
      async () => (await serving(sshd)) === 0 && (await sleeping()) === 0,
      () => "the laboratory still serves the session, or still runs the command",
    );
  },
  600_000,
);

/**
 * `labtest <argv>` in a process group of its own, as a terminal runs it: `interrupt` is Ctrl-C,
 * which reaches labtest and its ssh alike, and resolves to how labtest exited. Killed when the test ends.
 */
function interruptible(argv: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [LABTEST_JS, ...argv], {
    cwd,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let errors = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(-(child.pid ?? 0), "SIGKILL");
  });
  return {
    output: () => output,
    errors: () => errors,
    transcript: () => `${output}\n${errors}`,
    interrupt: () => {
      process.kill(-(child.pid ?? 0), "SIGINT");
      return exited;
    },
  };
}

/** How many processes of the laboratory user have a command line that `matches`. */
async function runningAsLabUser(sshd: TestSshd, matches: (line: string) => boolean): Promise<number> {
  const { stdout } = await execa("ps", ["-o", "args=", "-u", sshd.user.name], { reject: false });
  return stdout.split("\n").filter(matches).length;
}

/** How many forced commands (labtest serve --stdio) the laboratory user runs now. */
function serving(sshd: TestSshd): Promise<number> {
  return runningAsLabUser(sshd, (line) => line.includes("serve --stdio"));
}

async function until(done: () => boolean | Promise<boolean>, what: () => string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`waited ${ms} ms: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
