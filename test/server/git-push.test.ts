// `git push labtest <branch>` through a real sshd: the laboratory user's forced command
// (`labtest serve --stdio`) takes git's receive-pack, whose hooks create, update and delete the
// branch's experiment, or reject the push.
import { chown, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { commit, viaRouter } from "../support/experiments.js";
import { gitRepo } from "../support/project.js";
import { type SshClient, startTestSshd, type TestSshd } from "../support/sshd.js";

const APP_SERVER = `const fs = require("fs");
require("http").createServer((q, s) => s.end(fs.readFileSync("message.txt", "utf8"))).listen(process.env.PORT);
`;
const CONFIG = "labtest:\n  app_name: hello\n  start_command: node server.js\n";

/** A laptop's repository of the app, on branch feature/a, with the laboratory as its remote labtest. */
async function laptopRepository(sshd: TestSshd): Promise<string> {
  const repo = await gitRepo("hello");
  await writeFile(join(repo, "server.js"), APP_SERVER);
  await writeFile(join(repo, ".labtest.yml"), CONFIG);
  await commitMessage(repo, "first");
  await execa("git", ["-C", repo, "checkout", "-q", "-b", "feature/a"]);
  // As a user adds it: labtest names the app's repository on the laboratory its configuration points at.
  const added = await runCli(["--lab", `ssh://${sshd.alias}`, "remote", "add"], repo);
  expect(added.stdout).toContain(`added git remote labtest: ssh://${sshd.alias}/hello.git\n`);
  return repo;
}

async function commitMessage(repo: string, message: string): Promise<void> {
  await writeFile(join(repo, "message.txt"), message);
  await commit(repo, message);
}

/** A key of the laboratory, added by its user with labtest lab add-key. */
async function addKey(sshd: TestSshd, name: string, scope: string): Promise<SshClient> {
  const client = await sshd.client(name);
  const file = join(sshd.user.home, `${name}.pub`);
  await writeFile(file, `${client.publicKey}\n`);
  await chown(file, sshd.user.uid, sshd.user.uid);
  const added = await sshd.labtestAsLabUser(["lab", "add-key", name, file, "--scope", scope]);
  expect(added.exitCode, String(added.stderr)).toBe(0);
  return client;
}

/** The laboratory's state, as its administrator writes it: a file store in its home. */
async function labState(sshd: TestSshd, values: Record<string, unknown>): Promise<void> {
  const home = sshd.labtestHome;
  await mkdir(home, { recursive: true });
  const file = join(home, "state-values.json");
  await writeFile(file, JSON.stringify(values));
  await writeFile(
    join(home, "state.json"),
    JSON.stringify({ provider: "local", service: "file", options: { path: file } }),
  );
  await execa("chown", ["-R", `${sshd.user.uid}:${sshd.user.uid}`, join(sshd.user.home, ".local")]);
}

function push(repo: string, client: SshClient, ...refs: string[]) {
  return execa("git", ["-C", repo, "push", "labtest", ...refs], {
    env: client.env,
    reject: false,
    all: true,
  });
}

async function routerPort(sshd: TestSshd): Promise<number> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const started = await sshd.labtestAsLabUser(["lab", "start", "--port", String(port)]);
  expect(started.exitCode, String(started.stderr)).toBe(0);
  return port;
}

describe.skipIf(process.getuid?.() !== 0)("git push labtest", () => {
  it("creates the branch's experiment, updates it on the next push, deletes it with :branch", async () => {
    const sshd = await startTestSshd();
    const port = await routerPort(sshd);
    const deployer = await addKey(sshd, "ci", "deploy");
    const repo = await laptopRepository(sshd);

    const created = await push(repo, deployer, "feature/a");
    expect(created.exitCode, created.all).toBe(0);
    expect(created.all).toMatch(/remote: … checking out feature\/a/);
    const url = /remote: hello\/(\S+) is running at (http:\/\/(\S+):\d+\/)/.exec(created.all)?.[2];
    expect(url, created.all).toBeDefined();
    const host = new URL(url ?? "").hostname;
    expect((await viaRouter(port, host)).body).toBe("first");

    await commitMessage(repo, "second");
    const updated = await push(repo, deployer, "feature/a");
    expect(updated.exitCode, updated.all).toBe(0);
    expect(updated.all).toMatch(/remote: hello\/\S+ runs release [0-9a-f]{12} at /);
    expect((await viaRouter(port, host)).body).toBe("second");

    const deleted = await push(repo, deployer, ":feature/a");
    expect(deleted.exitCode, deleted.all).toBe(0);
    expect(deleted.all).toMatch(/remote: deleted hello\/feature-a-/);
    expect((await sshd.labtestAsLabUser(["list", "hello"])).stdout).toBe("no experiments of hello");
  }, 600_000);

  it("rejects a broken configuration with create's errors, another scope's key, and a branch outside the pattern, leaving nothing", async () => {
    const sshd = await startTestSshd();
    await labState(sshd, { "/push/branches/default": "feature/*" });
    const deployer = await addKey(sshd, "ci", "deploy");
    const reader = await addKey(sshd, "reviewer", "read");
    const repo = await laptopRepository(sshd);

    await writeFile(join(repo, ".labtest.yml"), `${CONFIG}  start_comand: typo\n`);
    await commitMessage(repo, "broken");
    const broken = await push(repo, deployer, "feature/a");
    expect(broken.exitCode).not.toBe(0);
    expect(broken.all).toMatch(
      /remote: labtest: feature\/a at [0-9a-f]{12}: configuration \.labtest\.yml is invalid/,
    );
    expect(broken.all).toMatch(/remote: +- line 4, labtest\.start_comand: unknown option "start_comand"/);
    expect(broken.all).toMatch(/\[remote rejected\] feature\/a -> feature\/a \(pre-receive hook declined\)/);

    const refused = await push(repo, reader, "feature/a");
    expect(refused.exitCode).not.toBe(0);
    expect(refused.all).toMatch(
      /reviewer may not push to the repository of hello: it needs the deploy scope, and has read/,
    );

    const outside = await push(repo, deployer, "feature/a:main");
    expect(outside.exitCode).not.toBe(0);
    expect(outside.all).toMatch(/remote: labtest: the laboratory does not publish branch main/);
    expect(outside.all).toMatch(
      /\/push\/branches\/default \(the laboratory's state\): pushes publish branches matching feature\/\* only/,
    );

    expect((await sshd.labtestAsLabUser(["list", "hello"])).stdout).toBe("no experiments of hello");
    expect((await sshd.labtestAsLabUser(["gc", "--dry-run"])).stdout).toBe("nothing to remove");
    const heads = await execa("git", [
      "-c",
      "safe.directory=*",
      "-C",
      join(sshd.labtestHome, "code", "hello.git"),
      "for-each-ref",
      "refs/heads/",
    ]);
    expect(heads.stdout).toBe("");
  }, 600_000);
});
