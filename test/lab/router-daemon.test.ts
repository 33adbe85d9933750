import { closeSync, openSync, writeSync } from "node:fs";
import { readdir, readFile, readlink } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import Database from "better-sqlite3";
import getPort from "get-port";
import { describe, expect, onTestFinished, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { Experiments } from "../../src/experiments/index.js";
import { Registry } from "../../src/lab/registry.js";
import { ensureRouter, stopRouter } from "../../src/lab/router-control.js";
import { runCli } from "../support/cli.js";
import { answeredViaRouter, nodeAppRepo, viaRouter } from "../support/experiments.js";
import { testLaboratory } from "../support/laboratory.js";
import { scratchDir } from "../support/project.js";

/** A laboratory home whose router (if a test starts one) stops when the test ends. */
async function home(): Promise<string> {
  const directory = await scratchDir("labtest-lab-");
  onTestFinished(() => stopRouter(directory).then(() => undefined));
  return directory;
}

/** The process listening on TCP `port` (from the kernel's socket tables). */
async function listener(port: number): Promise<number | undefined> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"])
    for (const line of (await readFile(table, "utf8").catch(() => "")).split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // Field 1 is address:port, 3 the state (0A: listening), 9 the socket's inode.
      if (fields[1]?.endsWith(`:${hex}`) && fields[3] === "0A" && fields[9])
        inodes.add(`socket:[${fields[9]}]`);
    }
  for (const pid of (await readdir("/proc")).filter((name) => /^\d+$/.test(name)))
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => []))
      if (inodes.has(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ""))) return Number(pid);
  return undefined;
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  for (const started = Date.now(); Date.now() - started < ms; await new Promise((r) => setTimeout(r, 100))) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

describe("the router as a daemon", () => {
  test("a damaged registry gets a 503 from the router, which sets it aside and rebuilds it from what runs by itself", async () => {
    // Not experimentLab: its cleanup reads the registry it holds open, which is set aside below.
    const lab = await testLaboratory();
    const routerPort = await getPort({ host: "127.0.0.1" });
    const laboratory = () =>
      new Experiments({ home: lab.home, state: lab.state, router: () => ({ port: routerPort }) });
    const experiments = laboratory();
    onTestFinished(async () => {
      const rebuilt = laboratory();
      await rebuilt.delete("hello", "main").catch(() => undefined);
      await stopRouter(lab.home);
      await Promise.all([rebuilt.close(), experiments.close()]);
    });
    const repo = await nodeAppRepo(
      `require("http").createServer((q, s) => s.end("app answered\\n")).listen(process.env.PORT);\n`,
    );
    const { host } = await experiments.create(
      { config: await loadConfig({ cwd: repo }), subdirectory: "" },
      { branch: "main" },
    );
    expect((await viaRouter(routerPort, host)).body).toBe("app answered\n");

    // Pages of the file (its write-ahead log moved in first) are overwritten in place; another
    // process then writes, so the router reads the damaged pages on its next request.
    const file = join(lab.home, "experiments.db");
    const checkpoint = new Database(file);
    checkpoint.pragma("wal_checkpoint(TRUNCATE)");
    checkpoint.close();
    const fd = openSync(file, "r+");
    writeSync(fd, Buffer.alloc(8192, 0x41), 0, 8192, 4096);
    closeSync(fd);
    const writer = new Database(file);
    writer.pragma("user_version = 2");
    writer.close();

    const answer = await viaRouter(routerPort, host);
    expect(answer.status).toBe(503);
    expect(answer.body).toContain("cannot read its experiments right now");
    // No labtest command runs: the router's process rebuilds the registry from the running app.
    expect(await answeredViaRouter(routerPort, host, 60)).toBe("app answered\n");
    expect((await readdir(lab.home)).some((f) => /^experiments\.db\.damaged-\d+$/.test(f))).toBe(true);
    expect(await readFile(join(lab.home, "router.log"), "utf8")).toMatch(
      /cannot read the routes: database disk image is malformed\n/,
    );
  }, 120_000);

  test("a router killed with SIGKILL is back within a few seconds, by itself; killing its daemon frees the port", async () => {
    const lab = await home();
    const port = await getPort({ host: "127.0.0.1" });
    const { pid: daemon } = await ensureRouter(lab, port);
    for (let round = 0; round < 2; round++) {
      const serving = await eventually("the router's process", () => listener(port));
      process.kill(serving, "SIGKILL");
      const answer = await eventually("an answer after the kill", () => viaRouter(port, "nowhere.localhost"));
      expect(answer.status).toBe(404);
      expect(await listener(port)).not.toBe(serving);
    }

    // Its daemon killed, the router goes too rather than hold the port against the next one.
    process.kill(daemon, "SIGKILL");
    await eventually("the port freed", async () => ((await listener(port)) === undefined ? true : undefined));
    await ensureRouter(lab, port);
    expect((await viaRouter(port, "nowhere.localhost")).status).toBe(404);
  });

  test("a second laboratory on the port of another's router refuses, naming the port and the other laboratory", async () => {
    const [first, second] = [await home(), await home()];
    const port = await getPort({ host: "127.0.0.1" });
    const env = (lab: string) => ({ ...process.env, LABTEST_HOME: lab, LABTEST_ROUTER_PORT: String(port) });
    expect((await runCli(["lab", "start"], first, env(first))).code).toBe(0);

    const refused = await runCli(["lab", "start"], second, env(second));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`port ${port} is taken by the router of another laboratory`);
    expect(refused.stderr).toContain(first);
    expect(refused.stderr).toMatch(/LABTEST_ROUTER_PORT=\d+/);
    expect((await runCli(["lab", "status"], second, env(second))).stdout).toBe("router not running\n");
    // The first laboratory's router still answers, as the first laboratory's.
    const answer = await viaRouter(port, "nowhere.localhost");
    expect(answer.headers["x-labtest-laboratory"]).toBe(new Registry(first).id);

    // As the error advises: a port of its own, kept for the second laboratory's next commands.
    const own = await getPort({ host: "127.0.0.1" });
    const { LABTEST_ROUTER_PORT: _, ...unset } = env(second);
    const moved = await runCli(["lab", "start", "--port", String(own)], second, unset);
    expect(moved.stdout).toMatch(new RegExp(`^router running on localhost port ${own} `));
    expect((await runCli(["lab", "stop"], second, unset)).code).toBe(0);
    expect((await runCli(["lab", "start"], second, unset)).stdout).toMatch(
      new RegExp(`^router running on localhost port ${own} `),
    );
    expect((await viaRouter(own, "nowhere.localhost")).headers["x-labtest-laboratory"]).toBe(
      new Registry(second).id,
    );
  });

  test("a port held by another program is refused too", async () => {
    const lab = await home();
    const other = createServer((_request, response) => response.end("not labtest\n"));
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    onTestFinished(() => {
      other.close();
    });
    const port = (other.address() as AddressInfo).port;
    const env = { ...process.env, LABTEST_HOME: lab, LABTEST_ROUTER_PORT: String(port) };
    const refused = await runCli(["lab", "start"], lab, env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`port ${port} is taken by a program that is not a labtest router`);
    expect(refused.stderr).toMatch(/LABTEST_ROUTER_PORT=\d+/);
    expect((await runCli(["lab", "status"], lab, env)).stdout).toBe("router not running\n");
  });
});
