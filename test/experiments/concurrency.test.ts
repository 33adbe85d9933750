import { chmod, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { expect, test } from "vitest";
import { commit, exampleRepo, experimentLab, setConfig } from "../support/experiments.js";
import { scratchDir } from "../support/project.js";

const BIN = join(import.meta.dirname, "../../bin/labtest.js");

/** Resolves once a command holds a lock of the laboratory at `home`. */
async function someLockHeld(home: string): Promise<void> {
  for (let tries = 0; tries < 600; tries++) {
    const locks = await readdir(join(home, "locks")).catch(() => [] as string[]);
    if (locks.some((entry) => entry.startsWith("experiment-") && entry.endsWith(".lock"))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("no command took the experiment's lock in 30 s");
}

/** Resolves once `command` has written `text` on its stderr. */
function saying(command: ResultPromise, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let said = "";
    command.stderr?.on("data", (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes(text)) resolve();
    });
    command.once("exit", () => reject(new Error(`it ended without saying "${text}":\n${said}`)));
  });
}

test("commands on one experiment take turns, saying who they wait for; a delete cancels an update in flight", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const labtest = (...argv: string[]) =>
    execa(process.execPath, [BIN, "--state", lab.statePath, "--verbose", ...argv], {
      cwd: repo,
      env,
      reject: false,
    });

  // Two creates of different experiments at once both succeed.
  const created = await Promise.all([
    labtest("create", "main", "--name", "a"),
    labtest("create", "main", "--name", "b"),
  ]);
  expect(
    created.map((c) => [c.exitCode, c.stderr.includes("waiting:")]),
    created.map((c) => c.stderr).join("\n----\n"),
  ).toEqual([
    [0, false],
    [0, false],
  ]);
  expect((await labtest("delete", "b")).exitCode).toBe(0);

  // A release that waits at its migration until the test opens a gate: whatever the machine's
  // load, the first update holds the experiment while the others ask for it.
  const gates = await scratchDir("labtest-gate-");
  await chmod(gates, 0o755);
  const gate = join(gates, "open");
  await setConfig(repo, (text) =>
    text.replace(
      "before_start_command: node migrate.js",
      `before_start_command: sh -c "while [ ! -e ${gate} ]; do sleep 0.1; done; node migrate.js"`,
    ),
  );
  await commit(repo, "a migration behind a gate");
  const first = labtest("update", "a");
  await someLockHeld(lab.home);
  const refused = await labtest("update", "a", "--wait", "0");
  expect(refused.exitCode, refused.stderr).toBe(75);
  expect(refused.stderr).toContain(`experiment a of hello is held by`);
  expect(refused.stderr).toContain(`running labtest update a (pid ${first.pid})`);
  const second = labtest("update", "a");
  await saying(second, "waiting:");
  await writeFile(gate, "");
  const [firstDone, secondDone] = await Promise.all([first, second]);
  expect([firstDone.exitCode, secondDone.exitCode], secondDone.stderr).toEqual([0, 0]);
  expect(secondDone.stderr).toMatch(
    new RegExp(
      `waiting: experiment a of hello is being changed by .* running labtest update a \\(pid ${first.pid}\\) since `,
    ),
  );
  expect(firstDone.stderr).not.toContain("waiting:");

  // A delete during an update cancels it; nothing of the experiment is left.
  await rm(gate);
  const updating = labtest("update", "a");
  await someLockHeld(lab.home);
  const deleting = labtest("delete", "a");
  await saying(deleting, "cancelling");
  await writeFile(gate, "");
  const deleted = await deleting;
  expect(deleted.exitCode, deleted.stderr).toBe(0);
  const cancelled = await updating;
  expect(cancelled.exitCode).toBe(1);
  expect(cancelled.stderr).toMatch(/labtest update a was cancelled by labtest delete a from /);
  expect(await lab.experiments.list()).toEqual([]);
  const gc = await labtest("gc", "--grace", "0", "--dry-run");
  expect(gc.exitCode, gc.stderr).toBe(0);
  expect(`${gc.stdout}${gc.stderr}`).not.toMatch(/hello|experiments\/|\.lock/);
}, 240_000);
