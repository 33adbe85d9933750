import { mkdir, stat } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { text } from "node:stream/consumers";
import { execa } from "execa";
import getPort from "get-port";
import { expect, onTestFinished, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { PROTOCOL_VERSION as v } from "../../src/laboratory/protocol.js";
import { AuditLog } from "../../src/server/audit.js";
import { readPublicKey, SshKeys } from "../../src/server/keys.js";
import { requestsSocketPath } from "../../src/server/requests-socket.js";
import { REQUEST_COMMAND } from "../../src/server/stdio.js";
import { initLaboratoryTls } from "../../src/server/tls.js";
import { exampleRepo, experimentLab, nodeAppRepo } from "../support/experiments.js";
import { scratchDir } from "../support/project.js";

const BIN = join(import.meta.dirname, "../../bin/labtest.js");

/** A laboratory home with the keys `reader` (read scope) and `deployer` (deploy scope). */
async function labWithKeys() {
  const lab = await experimentLab();
  await initLaboratoryTls(lab.home);
  const scratch = await scratchDir();
  const keys = new SshKeys({ home: lab.home, authorizedKeys: join(scratch, "authorized_keys") });
  for (const [name, scope] of [
    ["reader", "read"],
    ["deployer", "deploy"],
  ] as const) {
    const file = join(scratch, name);
    await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
    keys.add(name, await readPublicKey(`${file}.pub`), { scope, apps: [] });
  }
  return { lab, keys };
}

/** `labtest serve` on the lab's home, once it listens; its stdout so far, and how to stop it. */
async function startServe(lab: Awaited<ReturnType<typeof experimentLab>>) {
  const port = await getPort({ host: "127.0.0.1" });
  const serve = execa(
    process.execPath,
    [BIN, "--state", lab.statePath, "serve", "--listen", `127.0.0.1:${port}`],
    {
      env: { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) },
      cwd: lab.home,
      reject: false,
      all: true,
    },
  );
  onTestFinished(() => void serve.kill("SIGKILL"));
  let said = "";
  serve.stdout?.on("data", (chunk: Buffer) => {
    said += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    serve.stdout?.on("data", () => {
      if (said.includes("the laboratory's API on")) resolve();
    });
    void serve.then((ended) => reject(new Error(`serve ended: ${ended.all}`)));
  });
  return {
    said: () => said,
    kill: () => serve.kill("SIGKILL"),
    stop: async () => {
      serve.kill("SIGTERM");
      return serve;
    },
  };
}

/** The key's forced command, as sshd runs it, asked `kind` with `request`. */
async function forced(home: string, key: string, kind: string, request: unknown) {
  const run = await execa(process.execPath, [BIN, "serve", "--stdio", "--home", home, "--identity", key], {
    env: { ...process.env, SSH_ORIGINAL_COMMAND: REQUEST_COMMAND, SSH_CLIENT: "192.0.2.7 50000 22" },
    input: `${JSON.stringify({ kind, request })}\n`,
    reject: false,
  });
  const lines = run.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { exitCode: run.exitCode, lines, last: lines.at(-1), stderr: run.stderr };
}

test("with labtest serve running, the forced command's requests are answered by it: the same list, a removed key refused (77), a read key's create refused and audited", async () => {
  const { lab, keys } = await labWithKeys();
  const inProcess = await forced(lab.home, "reader", "list", { v });
  const serve = await startServe(lab);

  const relayed = await forced(lab.home, "reader", "list", { v });
  expect(relayed).toEqual(inProcess);
  expect(relayed.exitCode).toBe(0);
  expect(serve.said()).toMatch(/ssh 192\.0\.2\.7 reader labtest request: exit 0 /);

  const repo = await exampleRepo();
  const create = {
    v,
    project: { config: await loadConfig({ cwd: repo }), subdirectory: "" },
    branch: "main",
  };
  const refused = await forced(lab.home, "reader", "create", create);
  expect(refused.exitCode).toBe(77);
  expect(refused.last).toMatchObject({ error: { type: "PermissionError", exitCode: 77 } });
  const audit = new AuditLog(lab.home);
  onTestFinished(() => audit.close());
  expect(
    audit.read().map((entry) => [entry.who, entry.what, entry.from, entry.result.split(":")[0]]),
  ).toContainEqual(["reader", "create", "ssh 192.0.2.7", "PermissionError"]);

  keys.remove("reader");
  keys.close();
  const gone = await forced(lab.home, "reader", "list", { v });
  expect(gone.exitCode).toBe(77);
  expect(gone.last).toMatchObject({ error: { type: "AuthenticationError", exitCode: 77 } });
  expect(serve.said()).toMatch(/ssh 192\.0\.2\.7 reader labtest request: exit 77 /);
  expect((await serve.stop()).exitCode).toBe(0);
});

test("the requests' socket is in a directory only the laboratory user may enter, and is gone once serve stops", async () => {
  const { lab, keys } = await labWithKeys();
  keys.close();
  const serve = await startServe(lab);
  const socket = requestsSocketPath(lab.home);
  expect((await stat(join(socket, ".."))).mode & 0o777).toBe(0o700);
  expect((await stat(socket)).isSocket()).toBe(true);
  const ended = await serve.stop();
  expect(ended.exitCode, ended.all).toBe(0);
  await expect(stat(socket)).rejects.toThrow(/ENOENT/);
});

test("a session whose preamble is not a relayed request is refused with an error line and closed, nothing done", async () => {
  const { lab, keys } = await labWithKeys();
  keys.close();
  const serve = await startServe(lab);
  const answer = async (preamble: string) => {
    const socket = connect(requestsSocketPath(lab.home));
    socket.end(`${preamble}\n${JSON.stringify({ kind: "list", request: { v } })}\n`);
    return JSON.parse(await text(socket)) as { error: { type: string; problems: { what: string }[] } };
  };
  const git = await answer(
    JSON.stringify({ key: "deployer", command: "git-receive-pack 'hello.git'", client: "" }),
  );
  expect(git.error.type).toBe("UsageError");
  expect(git.error.problems[0]?.what).toMatch(/serves labtest request alone, not git-receive-pack/);
  const garbled = await answer("{not json");
  expect(garbled.error.problems[0]?.what).toMatch(/it is not \{"key", "command", "client"\}/);
  const audit = new AuditLog(lab.home);
  onTestFinished(() => audit.close());
  expect(audit.read()).toEqual([]);
  expect(serve.said()).not.toMatch(/labtest request: exit/);
  const stopped = await serve.stop();
  expect(stopped.exitCode, stopped.all).toBe(0);
});

test("a socket left by a serve that was killed is replaced by the next serve's", async () => {
  const { lab, keys } = await labWithKeys();
  keys.close();
  const socket = requestsSocketPath(lab.home);
  await mkdir(join(socket, ".."), { recursive: true, mode: 0o700 });
  const killed = execa(process.execPath, [
    "-e",
    `require("node:net").createServer().listen(${JSON.stringify(socket)}, () => console.log("up"))`,
  ]);
  await new Promise((resolve) => killed.stdout?.once("data", resolve));
  killed.kill("SIGKILL");
  await killed.catch(() => undefined);
  expect((await stat(socket)).isSocket()).toBe(true);

  const serve = await startServe(lab);
  const relayed = await forced(lab.home, "reader", "list", { v });
  expect(relayed.exitCode).toBe(0);
  expect(serve.said()).toMatch(/reader labtest request: exit 0 /);
  expect((await serve.stop()).exitCode).toBe(0);
});

/** The forced command of `reader` following the logs of a local experiment, once they say it listens. */
async function followingLogs(lab: Awaited<ReturnType<typeof experimentLab>>) {
  const repo = await nodeAppRepo(
    `require("http").createServer((q, s) => s.end("hi")).listen(process.env.PORT, () => console.log("listening"));\n`,
  );
  const project = { config: await loadConfig({ cwd: repo }), subdirectory: "" };
  await lab.experiments.create(project, { branch: "main" });
  const follower = execa(
    process.execPath,
    [BIN, "serve", "--stdio", "--home", lab.home, "--identity", "reader"],
    {
      env: { ...process.env, SSH_ORIGINAL_COMMAND: REQUEST_COMMAND, SSH_CLIENT: "192.0.2.7 50000 22" },
      reject: false,
    },
  );
  onTestFinished(() => void follower.kill("SIGKILL"));
  follower.stdin?.write(
    `${JSON.stringify({ kind: "logs", request: { v, project, name: "main", follow: true } })}\n`,
  );
  await new Promise<void>((resolve, reject) => {
    let said = "";
    follower.stdout?.on("data", (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes("listening")) resolve();
    });
    void follower.then((ended) => reject(new Error(`the follower ended: ${ended.stdout} ${ended.stderr}`)));
  });
  // In an object: the process is a promise, which an async function's return would wait for.
  return { follower };
}

test("a relayed logs --follow ends on the daemon's side when the forced command's stdin closes (a hang-up)", async () => {
  const { lab, keys } = await labWithKeys();
  keys.close();
  const serve = await startServe(lab);
  const { follower } = await followingLogs(lab);
  expect(serve.said()).not.toMatch(/reader labtest request: exit/);

  follower.stdin?.end();
  const ended = await follower;
  expect(ended.exitCode, ended.stderr).toBe(0);
  expect(ended.stdout.trim().split("\n").at(-1)).toMatch(/^\{"result":/);
  expect(serve.said()).toMatch(/reader labtest request: exit 0 /);
  expect((await serve.stop()).exitCode).toBe(0);
});

test("a relayed session whose serve goes away mid-answer ends non-zero, saying so in one line", async () => {
  const { lab, keys } = await labWithKeys();
  keys.close();
  const serve = await startServe(lab);
  const { follower } = await followingLogs(lab);
  serve.kill();
  const ended = await follower;
  expect(ended.exitCode).toBe(1);
  expect(ended.stderr).toMatch(
    /^labtest: the laboratory's labtest serve went away during the request \([^\n]*\)$/,
  );
});

test("serve's stop ends a relayed logs --follow at once, as it ends an HTTPS one, and the forced command exits 0", async () => {
  const { lab, keys } = await labWithKeys();
  keys.close();
  const serve = await startServe(lab);
  const { follower } = await followingLogs(lab);
  const stopping = Date.now();
  const stopped = await serve.stop();
  expect(stopped.exitCode, stopped.all).toBe(0);
  expect(Date.now() - stopping).toBeLessThan(10_000);
  expect(stopped.stdout).toMatch(/stopping \(SIGTERM\)[\s\S]*reader labtest request: exit 0 [\s\S]*stopped/);
  const ended = await follower;
  expect(ended.exitCode, ended.stderr).toBe(0);
});
