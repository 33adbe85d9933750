import { readdir, readFile } from "node:fs/promises";
import { execa } from "execa";
import pRetry from "p-retry";
import { describe, expect, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ExperimentError } from "../../src/experiments/index.js";
import { processesIn } from "../../src/lab/processes.js";
import { commit, exampleRepo, experimentLab, setConfig, viaRouter } from "../support/experiments.js";

/** The example app with another start_command, committed; its loaded configuration. */
async function appStartingWith(startCommand: string) {
  const repo = await exampleRepo();
  await setConfig(repo, (text) =>
    text.replace("start_command: node server.js", `start_command: ${startCommand}`),
  );
  await commit(repo, "another start_command");
  return { repo, loaded: await loadConfig({ cwd: repo }) };
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => new Error("it succeeded"),
    (e: Error) => e,
  );

describe("starting an app", () => {
  test("an app that exits at once fails the create without waiting, with its output from the first line", async () => {
    // The default answer timeout (60 s): only noticing the exit ends this early with this message.
    const lab = await experimentLab();
    const { loaded } = await appStartingWith(
      `node -e "console.error('ReplyError NOAUTH Authentication required'); for (let i = 0; i < 200; i++) console.error('  at frame ' + i); process.exit(1)"`,
    );
    const error = await failure(
      lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" }),
    );
    expect(error).toBeInstanceOf(ExperimentError);
    expect(error.message).toMatch(/^the app exited before it answered/);
    expect(error.message).toContain("ReplyError NOAUTH Authentication required");
    expect(error.message).toContain("at frame 199");
    expect(error.message).toMatch(/more lines \(labtest logs shows them all\)/);
    expect(error.message).not.toContain("$PORT");
    expect(await lab.experiments.list()).toEqual([]);
    // The experiment is gone, but what its app printed is still what labtest logs shows.
    const logs = await lab.experiments.logs("hello", "main");
    expect(logs).toMatch(
      /^# labtest: the create of hello\/main failed at .*: the app exited before it answered\n/,
    );
    expect(logs).toContain("ReplyError NOAUTH Authentication required\n  at frame 0\n");
  });

  test("an app listening on another port is told which one", async () => {
    const lab = await experimentLab({ answerTimeoutMs: 3000 });
    const { loaded } = await appStartingWith(
      `node -e "const s = require('http').createServer((q, r) => r.end()).listen(0, '127.0.0.1', () => console.log('listening on', s.address().port))"`,
    );
    const error = await failure(
      lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" }),
    );
    const port = /listening on (\d+)/.exec(error.message)?.[1];
    expect(port, error.message).toBeDefined();
    expect(error.message).toMatch(
      new RegExp(
        `it listens on port ${port}, not on \\$PORT \\(\\d+\\): make start_command listen on \\$PORT`,
      ),
    );
  });

  test("an app alive but listening on nothing is not told to listen on $PORT", async () => {
    const lab = await experimentLab({ answerTimeoutMs: 3000 });
    const { loaded } = await appStartingWith(
      `node -e "console.log('waiting for a queue'); setInterval(() => {}, 1000)"`,
    );
    const error = await failure(
      lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" }),
    );
    expect(error.message).toMatch(/^the app did not answer on port \d+ within 3 s/);
    expect(error.message).toContain("waiting for a queue");
    expect(error.message).toContain("it runs but listens on no TCP port yet");
    expect(error.message).not.toContain("$PORT");
  });

  test("a failed before_start_command shows its output from the first line", async () => {
    const lab = await experimentLab();
    const repo = await exampleRepo();
    await setConfig(repo, (text) =>
      text.replace(
        "before_start_command: node migrate.js",
        `before_start_command: node -e "console.error('MIGRATION' + ' FAILED relation users does not exist'); for (let i = 0; i < 100; i++) console.error('  at frame ' + i); process.exit(2)"`,
      ),
    );
    await commit(repo, "a migration that fails");
    const error = await failure(
      lab.experiments.create(
        { config: await loadConfig({ cwd: repo }), subdirectory: "" },
        { branch: "main" },
      ),
    );
    expect(error).toBeInstanceOf(ExperimentError);
    expect(error.message).toMatch(/^before_start_command failed \(exit 2\)/);
    expect(error.message).toContain("MIGRATION FAILED relation users does not exist");
    expect(error.message).toContain("at frame 99");
    expect(error.message).toMatch(/more lines \(labtest logs shows them all\)/);
  });

  test("status follows restarts and an orphaned app; a failed update's output stays in logs; delete stops an orphan", async () => {
    const lab = await experimentLab();
    const repo = await exampleRepo();
    const loaded = await loadConfig({ cwd: repo });
    const created = await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" });
    const directory = lab.experiments.directory(created);

    // The app dies: while its supervisor waits to start it again (2 s), status says so; then
    // the supervisor counts it and says how it ended.
    const [app] = (await processesIn(created.checkout)).filter((pid) => pid !== Number(created.handle));
    process.kill(app as number, "SIGKILL");
    await pRetry(
      async () => {
        const status = await lab.experiments.status("hello", "main");
        if (status?.status !== "restarting") throw new Error(JSON.stringify(status));
        expect(status.lastExit).toBe("SIGKILL");
      },
      { retries: 40, minTimeout: 25, maxTimeout: 50 },
    );
    await pRetry(
      async () => {
        const status = await lab.experiments.status("hello", "main");
        if (status?.status !== "running" || status.restarts !== 1) throw new Error(JSON.stringify(status));
        expect(status.lastExit).toBe("SIGKILL");
      },
      { retries: 40, minTimeout: 100, maxTimeout: 250 },
    );

    // A failing update leaves the running release, and its output in the logs.
    await setConfig(repo, (text) =>
      text.replace(
        "start_command: node server.js",
        `start_command: node -e "console.log('release-two-broke'); process.exit(3)"`,
      ),
    );
    await commit(repo, "a release that dies");
    await expect(lab.experiments.update({ config: loaded, subdirectory: "" }, "main")).rejects.toThrow(
      /exited before it answered/,
    );
    expect(await lab.experiments.logs("hello", "main")).toContain("release-two-broke");
    // Only the running release's supervisor spec (it holds the environment) is on disk.
    const specs = (await readdir(directory)).filter((f) => /^supervisor-\d+\.json$/.test(f));
    const running = (await lab.experiments.status("hello", "main")) as { port: number; handle: string };
    expect(specs).toEqual([`supervisor-${running.port}.json`]);

    // Its supervisor killed, the app serves on: status says so, and delete stops it.
    process.kill(Number(running.handle), "SIGKILL");
    await pRetry(
      async () => expect((await lab.experiments.status("hello", "main"))?.status).toBe("orphaned"),
      { retries: 20, minTimeout: 100, maxTimeout: 250 },
    );
    expect((await viaRouter(lab.routerPort, created.host)).status).toBe(200);
    await lab.experiments.delete("hello", "main");
    expect(await processesIn(directory)).toEqual([]);
    const listening = await execa("ss", ["-ltnH", `sport = :${running.port}`], { reject: false });
    expect(listening.stdout.trim()).toBe("");
    expect(await readFile(`${directory}/app.log`, "utf8").catch(() => "gone")).toBe("gone");
  });
});
