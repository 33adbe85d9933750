import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, test } from "vitest";
import { Sweep } from "../../src/lab/garbage.js";
import { LockHeldError, type LockHolder } from "../../src/lab/locks.js";
import { Registry } from "../../src/lab/registry.js";
import { scratchDir } from "../support/project.js";

const REGISTRY = join(import.meta.dirname, "../../dist/lab/registry.js");

/** Another labtest process that takes the named lock and holds it until it is killed; resolves to its kill. */
async function holderOf(home: string, name: string): Promise<() => Promise<unknown>> {
  const script = `const { Registry } = await import(${JSON.stringify(REGISTRY)});
    await new Registry(process.argv[1]).withLock(process.argv[2], async () => {
      console.log("held");
      await new Promise(() => setInterval(() => undefined, 1000));
    });`;
  const holder = execa(process.execPath, ["--input-type=module", "-e", script, home, name], {
    reject: false,
  });
  await new Promise<void>((resolve, reject) => {
    holder.stdout?.on("data", (chunk: Buffer) => chunk.toString().includes("held") && resolve());
    holder.then((r) => reject(new Error(`the holder ended: ${r.stderr}`)), reject);
  });
  return () => {
    holder.kill("SIGKILL");
    return holder;
  };
}

test("a lock whose holder was killed is free at once: taken over by the next command, removed by gc", async () => {
  const home = await scratchDir("labtest-locks-");
  const registry = new Registry(home);
  const killHolder = await holderOf(home, "network-x");
  expect(await registry.held("network-x")).toBe(true);
  // A live holder's lock is not garbage, however old gc is told to take things to be.
  const sweep = new Sweep(0);
  await registry.sweepLocks(sweep);
  expect(sweep.removals).toEqual([]);

  await killHolder();
  expect(await registry.held("network-x")).toBe(false);
  const afterKill = new Sweep(0, true);
  await registry.sweepLocks(afterKill);
  expect(afterKill.removals).toEqual([
    { what: `lock ${join(home, "locks", "network-x.lock")}`, why: "the command that held it is gone" },
  ]);
  // At once: with no wait allowed, a lock still held would be an error.
  expect(await registry.withLock("network-x", async () => "taken over", { waitMs: 0 })).toBe("taken over");
  expect(await readdir(join(home, "locks"))).toEqual([]);

  // And gc removes one that nobody takes over.
  await (await holderOf(home, "server-y"))();
  await registry.sweepLocks(new Sweep(0));
  expect(await readdir(join(home, "locks"))).toEqual([]);
});

test("a lock is held by one command at a time, the others waiting their turn", async () => {
  const registry = new Registry(await scratchDir("labtest-locks-"));
  let inside = 0;
  let most = 0;
  await Promise.all(
    Array.from({ length: 5 }, () =>
      registry.withLock("experiment-a-b", async () => {
        most = Math.max(most, ++inside);
        await new Promise((resolve) => setTimeout(resolve, 20));
        inside--;
      }),
    ),
  );
  expect(most).toBe(1);
});

/** Another process holding the named lock as alice's `labtest update x`, until cancelled: prints what stopped it. */
async function cancellableHolder(home: string, name: string) {
  const script = `const { Registry } = await import(${JSON.stringify(REGISTRY)});
    try {
      await new Registry(process.argv[1]).withLock(process.argv[2], (signal) => {
        console.log("held");
        return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
      }, { owner: { who: "alice", command: "labtest update x" } });
    } catch (error) { console.log(error.message.split("\\n")[0]); }`;
  const holder = execa(process.execPath, ["--input-type=module", "-e", script, home, name], {
    reject: false,
  });
  await new Promise<void>((resolve, reject) => {
    holder.stdout?.on("data", (chunk: Buffer) => chunk.toString().includes("held") && resolve());
    holder.then((r) => reject(new Error(`the holder ended: ${r.stderr}`)), reject);
  });
  // Wrapped: a subprocess is a promise, which an async function's result would wait for.
  return { holder };
}

test("a command that finds a lock held says once who holds it, and fails at once when it may not wait", async () => {
  const home = await scratchDir("labtest-locks-");
  const registry = new Registry(home);
  const { holder } = await cancellableHolder(home, "experiment-a-b");
  try {
    const refused = await registry
      .withLock("experiment-a-b", async () => "taken", { waitMs: 0, subject: "experiment b of a" })
      .catch((error: LockHeldError) => error);
    expect(refused).toBeInstanceOf(LockHeldError);
    expect((refused as LockHeldError).exitCode).toBe(75);
    expect((refused as LockHeldError).summary).toMatch(
      new RegExp(
        `^experiment b of a is held by alice running labtest update x \\(pid ${holder.pid}\\) since \\d{4}-`,
      ),
    );

    const told: LockHolder[] = [];
    const gaveUp = await registry
      .withLock("experiment-a-b", async () => "taken", {
        waitMs: 300,
        onWait: (held) => held && told.push(held),
      })
      .catch((error: LockHeldError) => error);
    expect(gaveUp).toBeInstanceOf(LockHeldError);
    expect(told.map((h) => [h.pid, h.who, h.command])).toEqual([[holder.pid, "alice", "labtest update x"]]);
  } finally {
    holder.kill("SIGKILL");
  }
});

test("cancel stops the holder's work, in another process or in this one, and the canceller takes the lock", async () => {
  const home = await scratchDir("labtest-locks-");
  const registry = new Registry(home);
  const bob = { who: "bob", command: "labtest delete x" };
  const { holder: other } = await cancellableHolder(home, "experiment-a-b");
  expect((await registry.cancelLock("experiment-a-b", bob))?.pid).toBe(other.pid);
  expect(await registry.withLock("experiment-a-b", async () => "deleting", { waitMs: 5000 })).toBe(
    "deleting",
  );
  expect((await other).stdout).toContain("labtest update x was cancelled by labtest delete x from bob");

  let reason: unknown;
  const here = registry.withLock(
    "experiment-a-b",
    (signal) =>
      new Promise((resolve) =>
        signal.addEventListener(
          "abort",
          () => {
            reason = signal.reason;
            resolve(undefined);
          },
          { once: true },
        ),
      ),
    { owner: { who: "carol", command: "labtest update x" } },
  );
  await new Promise((resolve) => setTimeout(resolve, 50));
  await registry.cancelLock("experiment-a-b", bob);
  await here;
  expect((reason as Error).message).toContain("labtest update x was cancelled by labtest delete x from bob");
  // A request to stop is not left for the next holder.
  expect(await readdir(join(home, "locks"))).toEqual([]);
  expect(await registry.withLock("experiment-a-b", async (signal) => signal.aborted)).toBe(false);
});
