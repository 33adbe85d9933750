import { once } from "node:events";
import { chmod, copyFile, readFile, stat, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { basename, join } from "node:path";
import { expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import type { AuditEntry } from "../../src/laboratory/identity.js";
import { PROTOCOL_VERSION as v } from "../../src/laboratory/protocol.js";
import type { StreamLine, WireError } from "../../src/laboratory/wire.js";
import { exampleRepo } from "../support/experiments.js";
import { freePort, type SshClient, startTestSshd, type TestSshd } from "../support/sshd.js";

// The forced command runs the built CLI (bin/labtest.js → dist/), as a laboratory's would: the
// test command builds it first. Building here too rewrote dist/ under the other test files'
// labtest processes, which then read half-written modules.

/** A test sshd and a client key added to it as `name` with `scope` (and `apps`), by the laboratory user. */
async function keyed(sshd: TestSshd, name: string, scope: string, apps: string[] = []): Promise<SshClient> {
  const client = await sshd.client(name);
  const added = await sshd.labtestAsLabUser([
    "lab",
    "add-key",
    name,
    await readableByLabUser(sshd, `${client.key}.pub`),
    "--scope",
    scope,
    ...apps.flatMap((app) => ["--app", app]),
  ]);
  expect(added.stderr).toBe("");
  expect(added.stdout).toMatch(new RegExp(`^added key ${name} \\(SHA256:\\S+\\): ${scope} on `));
  return client;
}

/** A copy of `file` in the laboratory user's home, which it can read (the client's directory is root's). */
async function readableByLabUser(sshd: TestSshd, file: string): Promise<string> {
  const copy = join(sshd.user.home, basename(file));
  await copyFile(file, copy);
  await chmod(copy, 0o644);
  return copy;
}

/**
 * `ssh lab labtest request` with the request line on stdin, which stays open until the answer's
 * last line (closing it would cancel): the answer's lines, and how ssh ended.
 */
async function ask(sshd: TestSshd, client: SshClient, kind: string, request: object) {
  const session = sshd.ssh(client, [sshd.alias, "labtest", "request"], { stdin: "pipe", buffer: false });
  session.stdin?.write(`${JSON.stringify({ kind, request })}\n`);
  const lines: StreamLine[] = [];
  let rest = "";
  session.stdout?.on("data", (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split("\n");
    rest = parts.pop() ?? "";
    for (const part of parts) {
      const line = JSON.parse(part) as StreamLine;
      lines.push(line);
      if ("result" in line || "error" in line) session.stdin?.end();
    }
  });
  let stderr = "";
  session.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const { exitCode } = await session;
  const last = lines.at(-1);
  return {
    lines,
    exitCode,
    stderr,
    error: last && "error" in last ? (last.error as WireError) : undefined,
    last,
  };
}

async function createRequest() {
  const repo = await exampleRepo();
  return { v, project: { config: await loadConfig({ cwd: repo }), subdirectory: "" }, branch: "main" };
}

test("a deploy key lists and creates through ssh with a JSON line; a read key's create and an app-limited key's other app are refused with exit code 77 and audited", async () => {
  const sshd = await startTestSshd();
  const deployer = await keyed(sshd, "alice", "deploy");
  const reader = await keyed(sshd, "reader", "read");
  const shop = await keyed(sshd, "shop-ci", "deploy", ["shop"]);
  const admin = await keyed(sshd, "root-ish", "admin");

  const listed = await ask(sshd, deployer, "list", { v, app: "hello" });
  expect(listed).toMatchObject({ lines: [{ result: [] }], exitCode: 0, stderr: "" });

  const create = await createRequest();
  // The laboratory runs it as alice: it gets as far as the code, which a server cannot read from a client's path.
  const created = await ask(sshd, deployer, "create", create);
  expect(created.error).toMatchObject({ type: "UsageError", exitCode: 2 });
  expect(created.error?.summary).toMatch(/this laboratory cannot read the repository/);
  expect(created.exitCode).toBe(2);

  const refused = await ask(sshd, reader, "create", create);
  expect(refused.lines).toHaveLength(1);
  expect(refused.error).toMatchObject({ type: "PermissionError", exitCode: 77 });
  expect(refused.error?.summary).toMatch(/reader may not create: it needs the deploy scope/);
  expect(refused.exitCode).toBe(77);
  const otherApp = await ask(sshd, shop, "create", create);
  expect(otherApp.error?.summary).toMatch(/shop-ci may not create of app hello/);
  const otherList = await ask(sshd, shop, "list", { v, app: "hello" });
  expect(otherList.error?.summary).toMatch(/shop-ci may not list of app hello/);

  const audit = await ask(sshd, admin, "audit", { v });
  const entries = (audit.last as { result: AuditEntry[] }).result;
  expect(entries.map((e) => [e.who, e.what, e.from, e.result.split(":")[0]])).toEqual([
    ...["alice", "reader", "shop-ci", "root-ish"].map(() => [sshd.user.name, "keyAdd", "local", "ok"]),
    ["alice", "create", "ssh 127.0.0.1", "UsageError"],
    ["reader", "create", "ssh 127.0.0.1", "PermissionError"],
    ["shop-ci", "create", "ssh 127.0.0.1", "PermissionError"],
  ]);
  expect(entries[0]?.target).toBe("alice");
});

test("an ssh session without a command, with another command, or forwarding a port gets nothing", async () => {
  const sshd = await startTestSshd();
  const client = await keyed(sshd, "alice", "admin");

  const interactive = await sshd.ssh(client, [sshd.alias], { input: "echo pwned\n" });
  expect(interactive.exitCode).toBe(1);
  expect(interactive.stdout).toBe("");
  expect(interactive.stderr).toMatch(/this key may only speak labtest's protocol/);
  const shell = await sshd.ssh(client, [sshd.alias, "cat", "/etc/passwd"]);
  expect(shell).toMatchObject({ exitCode: 1, stdout: "" });
  expect(shell.stderr).toMatch(/not: cat \/etc\/passwd/);

  // restrict: the local end of -L listens, and the laboratory refuses to open its far end.
  const local = await freePort();
  const forward = sshd.ssh(
    client,
    ["-N", "-v", "-L", `127.0.0.1:${local}:127.0.0.1:${sshd.port}`, sshd.alias],
    {
      buffer: false,
    },
  );
  let log = "";
  forward.stderr?.on("data", (chunk: Buffer) => {
    log += chunk.toString();
  });
  try {
    while (!log.includes(`Local forwarding listening on 127.0.0.1 port ${local}`)) {
      expect(forward.exitCode, log).toBeNull();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const socket = connect(local, "127.0.0.1");
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString();
    });
    await once(socket, "close");
    expect(received).toBe("");
    while (!log.includes("administratively prohibited"))
      await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    forward.kill();
  }
});

test("lab keys lists the keys, remove-key removes one, which then cannot log in; other lines of authorized_keys stay as they were", async () => {
  const sshd = await startTestSshd();
  const alice = await keyed(sshd, "alice", "deploy", ["hello", "shop"]);
  const foreign =
    'from="10.0.0.1" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleExampleEx someone@else';
  await writeFile(sshd.authorizedKeys, `${foreign}\n${await readFile(sshd.authorizedKeys, "utf8")}`);
  const bob = await keyed(sshd, "bob", "read");

  const lines = (await readFile(sshd.authorizedKeys, "utf8")).trimEnd().split("\n");
  expect(lines[0]).toBe(foreign);
  expect(lines.slice(1)).toEqual([
    expect.stringMatching(
      /^command="\S+ \S+labtest\.js serve --stdio --home \S+ --identity alice",restrict ssh-ed25519 \S+ labtest:alice$/,
    ),
    expect.stringMatching(/^command=".* --identity bob",restrict ssh-ed25519 \S+ labtest:bob$/),
  ]);
  expect((await stat(sshd.authorizedKeys)).mode & 0o777).toBe(0o600);
  expect((await stat(sshd.authorizedKeys)).uid).toBe(sshd.user.uid);

  const listed = await sshd.labtestAsLabUser(["lab", "keys"]);
  expect(listed.stdout).toMatch(
    /^NAME +FINGERPRINT +SCOPE +APPS +ADDED\nalice +SHA256:\S+ +deploy +hello,shop +\d{4}-.*\nbob +SHA256:\S+ +read +all +\d{4}-/,
  );

  const again = await sshd.labtestAsLabUser([
    "lab",
    "add-key",
    "alice",
    await readableByLabUser(sshd, `${bob.key}.pub`),
    "--scope",
    "read",
  ]);
  expect(again).toMatchObject({
    exitCode: 2,
    stderr: expect.stringMatching(/there is already a key named alice/),
  });
  const sameKey = await sshd.labtestAsLabUser([
    "lab",
    "add-key",
    "alice-2",
    await readableByLabUser(sshd, `${alice.key}.pub`),
    "--scope",
    "admin",
  ]);
  expect(sameKey.stderr).toMatch(/this key is already the laboratory's, as alice/);
  const privateKey = await sshd.labtestAsLabUser([
    "lab",
    "add-key",
    "carol",
    await readableByLabUser(sshd, alice.key),
    "--scope",
    "read",
  ]);
  expect(privateKey.stderr).toMatch(/is not a public key file/);

  const removed = await sshd.labtestAsLabUser(["lab", "remove-key", "alice"]);
  expect(removed.stdout).toMatch(/^removed key alice \(SHA256:/);
  expect((await readFile(sshd.authorizedKeys, "utf8")).trimEnd().split("\n")).toEqual([
    foreign,
    expect.stringMatching(/labtest:bob$/),
  ]);
  const refused = await ask(sshd, alice, "list", { v });
  expect(refused.exitCode).toBe(255);
  expect(refused.stderr).toMatch(/Permission denied \(publickey\)/);
  expect((await ask(sshd, bob, "list", { v })).lines).toEqual([{ result: [] }]);
});
