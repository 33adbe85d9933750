import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, it } from "vitest";
import {
  codeRepository,
  ensureCodeRepository,
  installHooks,
  receiveBundle,
  storedHeads,
} from "../../src/experiments/code-store.js";
import { commit } from "../support/experiments.js";
import { gitRepo, scratchDir } from "../support/project.js";

it("two clients pushing an app's first code at once both get its one repository", async () => {
  const home = await scratchDir();
  // Each push makes the app's repository when it has none: at once, each finds none.
  const made = await Promise.allSettled(
    Array.from({ length: 32 }, () => ensureCodeRepository(home, "hello")),
  );
  expect(made.map((m) => (m.status === "rejected" ? String(m.reason) : m.value))).toEqual(
    Array(32).fill(codeRepository(home, "hello")),
  );
  const bare = await execa("git", ["-C", codeRepository(home, "hello"), "rev-parse", "--is-bare-repository"]);
  expect(bare.stdout).toBe("true");
});

it("bundles of one app pushed at once, of other branches or the same, are all taken", async () => {
  const home = await scratchDir();
  const laptop = await gitRepo("hello");
  await writeFile(join(laptop, "a.txt"), "a\n");
  await commit(laptop, "first");
  const bundles: Buffer[] = [];
  for (const branch of ["a", "b", "c", "d", "e", "f"]) {
    await execa("git", ["-C", laptop, "checkout", "-q", "-b", branch, "main"]);
    await writeFile(join(laptop, `on-${branch}.txt`), `${branch}\n`);
    await commit(laptop, branch);
    const file = join(laptop, "..", `${branch}.bundle`);
    await execa("git", ["-C", laptop, "bundle", "create", "-q", file, branch]);
    bundles.push(await readFile(file));
  }
  // Twice each: two laptops may push the same branch at the same moment.
  const taken = await Promise.allSettled(
    [...bundles, ...bundles].map((b) => receiveBundle(home, "hello", b)),
  );
  expect(
    taken.filter((t) => t.status === "rejected").map((t) => String((t as PromiseRejectedResult).reason)),
  ).toEqual([]);
  expect(Object.keys(await storedHeads(home, "hello")).sort()).toEqual(["a", "b", "c", "d", "e", "f"]);
});

it("a push arriving while another push installs the hooks again runs the whole hook, never an empty or half-written one", async () => {
  const repository = await ensureCodeRepository(await scratchDir(), "hello");
  const script = `#!/bin/sh\n# ${"a hook long enough to be written in more than one piece ".repeat(2000)}\nexit 0\n`;
  await installHooks(repository, { "post-receive": script });
  const hook = join(repository, "hooks", "post-receive");
  const stop = join(repository, "stop-reading");
  // git as another push runs it: it reads the file while this process rewrites it.
  const reader = execa(process.execPath, [
    "-e",
    `const { readFileSync, existsSync } = require("node:fs");
     const expected = readFileSync(${JSON.stringify(hook)}, "utf8");
     let reads = 0, partial = 0;
     console.log("reading");
     while (!existsSync(${JSON.stringify(stop)})) {
       reads++;
       if (readFileSync(${JSON.stringify(hook)}, "utf8") !== expected) partial++;
     }
     console.log(JSON.stringify({ reads, partial }));`,
  ]);
  await new Promise((resolve) => reader.stdout?.once("data", resolve));
  for (let install = 0; install < 200; install++) await installHooks(repository, { "post-receive": script });
  await writeFile(stop, "");
  const { reads, partial } = JSON.parse((await reader).stdout.split("\n").at(-1) ?? "{}");
  expect(reads).toBeGreaterThan(0);
  expect(partial).toBe(0);
});
