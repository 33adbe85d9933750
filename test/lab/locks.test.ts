import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, test } from "vitest";
import { Sweep } from "../../src/lab/garbage.js";
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
  const started = performance.now();
  expect(await registry.withLock("network-x", async () => "taken over")).toBe("taken over");
  expect(performance.now() - started).toBeLessThan(1000);
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
